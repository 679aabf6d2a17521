//! A node seen as serde-saphyr's `Spanned<T>` representation, so the schema's `Spanned` fields
//! carry their places when read from the tree too.

use serde::de::value::{BoolDeserializer, MapDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde_saphyr::Location;

use super::reader::{Mistake, Reader};

/// serde-saphyr reads `Spanned<T>` as this newtype, holding a map whose first key is the
/// marker, then `value`, `referenced` and `defined`; the reader answers the same way, so the
/// schema's `Spanned` fields carry their places here too. (A change of that protocol in a
/// new serde-saphyr shows in the tests of located problems.)
pub(super) const SPANNED_NEWTYPE: &str = "__yaml_spanned";
const SPANNED_MARKER: &str = "__serde_saphyr_private_spanned";

/// A node seen as serde-saphyr's `Spanned` representation.
pub(super) struct Located<'t>(pub(super) Reader<'t>);

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
