//! Reads the schema's types out of a [`Node`] tree, leaving out the nodes found wrong in
//! earlier attempts, and remembering which node the next mistake is in.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use serde::de::value::{BoolDeserializer, MapAccessDeserializer, MapDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Location;

pub(super) use super::mistake::Mistake;
use super::tree::{Node, Value};

/// serde-saphyr reads `Spanned<T>` as this newtype, holding a map whose first key is the
/// marker, then `value`, `referenced` and `defined`; the reader answers the same way, so the
/// schema's `Spanned` fields carry their places here too. (A change of that protocol in a
/// new serde-saphyr shows in the tests of located problems.)
const SPANNED_NEWTYPE: &str = "__yaml_spanned";
const SPANNED_MARKER: &str = "__serde_saphyr_private_spanned";

/// One attempt at reading the file: what is left out, and where the first mistake is.
pub(super) struct Attempt<'t> {
    /// Nodes found wrong by earlier attempts (grown between attempts).
    pub(super) excluded: &'t RefCell<HashSet<*const Node>>,
    /// The file's text, for scalars read as strings.
    pub(super) source: &'t str,
    /// The innermost node whose reading failed: the first to see an error sets it.
    pub(super) blamed: Cell<Option<&'t Node>>,
}

impl<'t> Attempt<'t> {
    fn keeps(&self, node: &Node) -> bool {
        !self.excluded.borrow().contains(&(node as *const Node))
    }
}

/// A deserializer over one node of the tree.
#[derive(Clone, Copy)]
pub(super) struct Reader<'t> {
    pub(super) node: &'t Node,
    pub(super) attempt: &'t Attempt<'t>,
}

impl<'t> Reader<'t> {
    fn at(self, node: &'t Node) -> Reader<'t> {
        Reader {
            node,
            attempt: self.attempt,
        }
    }

    /// Marks this node as the mistake's place unless a node inside it already is.
    fn blame<T>(self, result: Result<T, Mistake>) -> Result<T, Mistake> {
        if result.is_err() && self.attempt.blamed.get().is_none() {
            self.attempt.blamed.set(Some(self.node));
        }
        result
    }

    fn dispatch<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Uint(u) => visitor.visit_u64(*u),
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Text(s) => visitor.visit_str(s),
            Value::Seq(items) => {
                let mut seq = Items {
                    reader: self,
                    items: items.iter().filter(|n| self.attempt.keeps(n)).collect(),
                    next: 0,
                };
                let value = visitor.visit_seq(&mut seq)?;
                if seq.next == seq.items.len() {
                    Ok(value)
                } else {
                    let expected = format!("{} elements in sequence", seq.next);
                    Err(de::Error::invalid_length(
                        seq.items.len(),
                        &expected.as_str(),
                    ))
                }
            }
            Value::Map(entries) => visitor.visit_map(self.entries(entries)),
        }
    }

    fn entries(self, entries: &'t [(Node, Node)]) -> Entries<'t> {
        Entries {
            reader: self,
            entries: entries
                .iter()
                .filter(|(k, v)| self.attempt.keeps(k) && self.attempt.keeps(v))
                .collect(),
            next: 0,
        }
    }

    /// Scalars as text, as YAML reads a plain scalar where a string is expected.
    fn text<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        let written = self.node.written(self.attempt.source);
        match &self.node.value {
            Value::Text(s) => visitor.visit_str(s),
            Value::Bool(_) | Value::Int(_) | Value::Uint(_) | Value::Float(_)
                if let Some(text) = written =>
            {
                visitor.visit_str(text)
            }
            Value::Bool(b) => visitor.visit_str(&b.to_string()),
            Value::Int(i) => visitor.visit_str(&i.to_string()),
            Value::Uint(u) => visitor.visit_str(&u.to_string()),
            Value::Float(x) => visitor.visit_str(&x.to_string()),
            _ => self.dispatch(visitor),
        }
    }
}

impl<'de, 't> de::Deserializer<'de> for Reader<'t> {
    type Error = Mistake;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        self.blame(self.dispatch(visitor))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        let result = match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        };
        self.blame(result)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Mistake> {
        let result = if name == SPANNED_NEWTYPE {
            visitor.visit_newtype_struct(Located(self))
        } else {
            visitor.visit_newtype_struct(self)
        };
        self.blame(result)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Mistake> {
        let result = match &self.node.value {
            Value::Text(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Map(entries) if entries.len() == 1 => {
                visitor.visit_enum(MapAccessDeserializer::new(self.entries(entries)))
            }
            _ => self.dispatch(visitor),
        };
        self.blame(result)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        self.blame(self.text(visitor))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        self.blame(self.text(visitor))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        self.blame(self.text(visitor))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        let result = match &self.node.value {
            Value::Text(s) if s.trim().parse::<f64>().is_ok() => {
                visitor.visit_f64(s.trim().parse().unwrap_or_default())
            }
            _ => self.dispatch(visitor),
        };
        self.blame(result)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct
    }
}

struct Items<'t> {
    reader: Reader<'t>,
    items: Vec<&'t Node>,
    next: usize,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = Mistake;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Mistake> {
        let Some(item) = self.items.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        seed.deserialize(self.reader.at(item)).map(Some)
    }
}

struct Entries<'t> {
    reader: Reader<'t>,
    entries: Vec<&'t (Node, Node)>,
    next: usize,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Mistake;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Mistake> {
        let Some((key, _)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(self.reader.at(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Mistake> {
        let (_, value) = self.entries[self.next];
        self.next += 1;
        seed.deserialize(self.reader.at(value))
    }
}

/// A node seen as serde-saphyr's `Spanned` representation.
struct Located<'t>(Reader<'t>);

impl<'de> de::Deserializer<'de> for Located<'_> {
    type Error = Mistake;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        visitor.visit_map(LocatedFields {
            reader: self.0,
            next: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct LocatedFields<'t> {
    reader: Reader<'t>,
    next: usize,
}

const LOCATED_FIELDS: [&str; 4] = [SPANNED_MARKER, "value", "referenced", "defined"];

impl<'de> MapAccess<'de> for LocatedFields<'_> {
    type Error = Mistake;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Mistake> {
        match LOCATED_FIELDS.get(self.next) {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Mistake> {
        self.next += 1;
        match self.next {
            1 => seed.deserialize(BoolDeserializer::new(true)),
            2 => seed.deserialize(self.reader),
            _ => seed.deserialize(location(self.reader.node.at)),
        }
    }
}

/// A `Location` as the map its `Deserialize` reads.
fn location(
    at: Location,
) -> MapDeserializer<'static, std::array::IntoIter<(&'static str, u64), 2>, Mistake> {
    MapDeserializer::new([("line", at.line()), ("column", at.column())].into_iter())
}
