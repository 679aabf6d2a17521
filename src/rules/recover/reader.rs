//! Reads the schema's types out of a [`Node`] tree, leaving out the nodes found wrong in
//! earlier attempts, and remembering which node the next mistake is in.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::Found;
use super::located::{Located, SPANNED_NEWTYPE};
pub(super) use super::mistake::Mistake;
use super::tree::{Node, Value};

/// One attempt at reading the file: what is left out, and where the first mistake is.
pub(super) struct Attempt<'t> {
    /// Nodes found wrong by earlier attempts (grown between attempts).
    pub(super) excluded: &'t RefCell<HashSet<*const Node>>,
    /// Mistakes found so far; unknown keys are added as soon as their mapping is read.
    pub(super) found: &'t RefCell<Vec<Found>>,
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

    /// Every key of a struct's mapping that the struct does not have, reported and left out
    /// at once, so that one attempt finds them all. (Every struct of the schema refuses unknown
    /// keys: `deny_unknown_fields`.)
    fn refuse_unknown_keys(self, fields: &'static [&'static str]) {
        let Value::Map(entries) = &self.node.value else {
            return;
        };
        for (key, value) in entries {
            let Value::Text(name) = &key.value else {
                continue;
            };
            if fields.contains(&name.as_str())
                || !self.attempt.keeps(key)
                || !self.attempt.keeps(value)
            {
                continue;
            }
            let mistake = <Mistake as de::Error>::unknown_field(name, fields);
            self.attempt.found.borrow_mut().push(Found {
                at: key.at,
                message: mistake.message,
                hint: mistake.hint,
            });
            self.attempt
                .excluded
                .borrow_mut()
                .insert(key as *const Node);
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

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Mistake> {
        self.refuse_unknown_keys(fields);
        self.blame(self.dispatch(visitor))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char bytes byte_buf unit unit_struct seq
        tuple tuple_struct map
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
