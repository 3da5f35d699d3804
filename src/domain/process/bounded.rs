//! A deserializer wrapper that counts every value (and every string byte) handed out, and stops
//! with an error past a budget. Whatever the underlying format does — YAML aliases that a future
//! scanner misses, a parser difference — a definition can never expand past the budget in memory.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// DESIGN §9: a definition holds at most 100,000 values after parsing.
pub const MAX_VALUES: usize = 100_000;
/// Strings are bounded too: an alias of a long string repeated is few values but many bytes.
pub const MAX_STRING_BYTES: usize = 4 * 1024 * 1024;

/// What has been handed out so far; shared by every nested wrapper of one deserialization.
#[derive(Debug)]
pub struct Budget {
    values: Cell<usize>,
    bytes: Cell<usize>,
    max_values: usize,
    max_bytes: usize,
}

impl Budget {
    pub fn new(max_values: usize, max_bytes: usize) -> Self {
        Budget { values: Cell::new(0), bytes: Cell::new(0), max_values, max_bytes }
    }

    pub fn definition() -> Self {
        Budget::new(MAX_VALUES, MAX_STRING_BYTES)
    }

    /// The message a budget error carries, so callers can tell it from other errors.
    pub fn exceeded_message(&self) -> String {
        format!(
            "the definition holds more than {} values (or {} bytes of text) once read; anchors and aliases are not accepted",
            self.max_values, self.max_bytes
        )
    }

    pub fn is_exceeded(&self) -> bool {
        self.values.get() > self.max_values || self.bytes.get() > self.max_bytes
    }

    fn take_value<E: de::Error>(&self) -> Result<(), E> {
        self.values.set(self.values.get() + 1);
        if self.is_exceeded() {
            return Err(E::custom(self.exceeded_message()));
        }
        Ok(())
    }

    fn take_bytes<E: de::Error>(&self, n: usize) -> Result<(), E> {
        self.bytes.set(self.bytes.get().saturating_add(n));
        if self.is_exceeded() {
            return Err(E::custom(self.exceeded_message()));
        }
        Ok(())
    }
}

/// Wraps a deserializer so that every value it yields is charged to `budget`.
pub struct Bounded<'b, D> {
    inner: D,
    budget: &'b Budget,
}

impl<'b, D> Bounded<'b, D> {
    pub fn new(inner: D, budget: &'b Budget) -> Self {
        Bounded { inner, budget }
    }
}

struct Wrap<'b, X> {
    inner: X,
    budget: &'b Budget,
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.budget.take_value()?;
                self.inner.$method(Wrap { inner: visitor, budget: self.budget })
            }
        )*
    };
}

impl<'de, 'b, D: Deserializer<'de>> Deserializer<'de> for Bounded<'b, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.budget.take_value()?;
        self.inner.deserialize_unit_struct(name, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.budget.take_value()?;
        self.inner.deserialize_newtype_struct(name, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.budget.take_value()?;
        self.inner.deserialize_tuple(len, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(self, name: &'static str, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.budget.take_value()?;
        self.inner.deserialize_tuple_struct(name, len, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.budget.take_value()?;
        self.inner.deserialize_struct(name, fields, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.budget.take_value()?;
        self.inner.deserialize_enum(name, variants, Wrap { inner: visitor, budget: self.budget })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<'de, 'b, V: Visitor<'de>> Visitor<'de> for Wrap<'b, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V::Value, E> {
        self.inner.visit_bool(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        self.inner.visit_i64(v)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<V::Value, E> {
        self.inner.visit_i128(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.inner.visit_u64(v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<V::Value, E> {
        self.inner.visit_u128(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        self.inner.visit_f64(v)
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<V::Value, E> {
        self.inner.visit_char(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.budget.take_bytes(v.len())?;
        self.inner.visit_str(v)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.budget.take_bytes(v.len())?;
        self.inner.visit_borrowed_str(v)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.budget.take_bytes(v.len())?;
        self.inner.visit_string(v)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<V::Value, E> {
        self.budget.take_bytes(v.len())?;
        self.inner.visit_bytes(v)
    }
    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<V::Value, E> {
        self.budget.take_bytes(v.len())?;
        self.inner.visit_borrowed_bytes(v)
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<V::Value, E> {
        self.budget.take_bytes(v.len())?;
        self.inner.visit_byte_buf(v)
    }
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }
    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.inner.visit_some(Bounded::new(d, self.budget))
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }
    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.inner.visit_newtype_struct(Bounded::new(d, self.budget))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Wrap { inner: seq, budget: self.budget })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Wrap { inner: map, budget: self.budget })
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Wrap { inner: data, budget: self.budget })
    }
}

impl<'de, 'b, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'b, S> {
    type Value = S::Value;

    fn deserialize<D2: Deserializer<'de>>(self, d: D2) -> Result<S::Value, D2::Error> {
        self.inner.deserialize(Bounded::new(d, self.budget))
    }
}

impl<'de, 'b, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<'b, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Wrap { inner: seed, budget: self.budget })
    }
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'b, A: MapAccess<'de>> MapAccess<'de> for Wrap<'b, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Wrap { inner: seed, budget: self.budget })
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Wrap { inner: seed, budget: self.budget })
    }
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'b, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Wrap<'b, A> {
    type Error = A::Error;
    type Variant = Wrap<'b, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), A::Error> {
        let budget = self.budget;
        let (value, variant) = self.inner.variant_seed(Wrap { inner: seed, budget })?;
        Ok((value, Wrap { inner: variant, budget }))
    }
}

impl<'de, 'b, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrap<'b, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Wrap { inner: seed, budget: self.budget })
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, Wrap { inner: visitor, budget: self.budget })
    }
    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, Wrap { inner: visitor, budget: self.budget })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn read(value: Value, max: usize) -> Result<Value, String> {
        let budget = Budget::new(max, 1 << 20);
        serde::Deserialize::deserialize(Bounded::new(value, &budget)).map_err(|e: serde_json::Error| e.to_string())
    }

    #[test]
    fn counts_every_nested_value() {
        let v = serde_json::json!({"a": [1, 2, 3], "b": {"c": "d"}});
        assert_eq!(read(v.clone(), 100).unwrap(), v);
        let err = read(v, 4).unwrap_err();
        assert!(err.contains("more than 4 values"), "{err}");
    }

    #[test]
    fn counts_string_bytes() {
        let budget = Budget::new(100, 10);
        let r: Result<Value, serde_json::Error> =
            serde::Deserialize::deserialize(Bounded::new(serde_json::json!(["0123456789", "x"]), &budget));
        assert!(r.is_err());
    }
}
