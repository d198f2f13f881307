//! A document's top-level members made into a `Value`, the rest not: what
//! [`super::project`] and [`super::matches_all`] read of it, for documents
//! that are far larger than what a client selects of them.

use std::collections::BTreeSet;

use serde::Serialize;
use serde::ser::{self, Impossible, SerializeMap, SerializeStruct, Serializer};
use serde_json::{Map, Value};

/// Parses the JSON object `json` into a `Value` of its top-level
/// `members` only: all that [`super::project`] and [`super::matches_all`]
/// read of a document, when `members` is [`super::members_read`] of their
/// fields and filters, and projected or matched the same as the whole. The
/// rest is read past (and checked to be JSON), not made into a `Value`,
/// which takes several times the JSON's size. Duplicate members: the last
/// one counts, as in a whole parse. An error for anything but an object.
pub fn parse_members(json: &[u8], members: &BTreeSet<&str>) -> serde_json::Result<Value> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Members<'a, 'b>(&'a BTreeSet<&'b str>);
    impl<'de> DeserializeSeed<'de> for Members<'_, '_> {
        type Value = Map<String, Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Members<'_, '_> {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if self.0.contains(key.as_str()) {
                    let value = map.next_value::<Value>()?;
                    kept.insert(key, value);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(kept)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let kept = Members(members).deserialize(&mut de)?;
    de.end()?;
    Ok(Value::Object(kept))
}

/// The `Value` of the top-level `members` of `doc`, a type that serializes
/// as a JSON object (a struct or a map, flattened fields included), as
/// [`parse_members`] would read them from `doc` written out: each member
/// named is made into a `Value` as `serde_json::to_value` makes it, and the
/// others are never converted nor written. An error for anything but an
/// object.
pub fn members_of<T: Serialize + ?Sized>(
    doc: &T,
    members: &BTreeSet<&str>,
) -> serde_json::Result<Value> {
    doc.serialize(TopLevel(members)).map(Value::Object)
}

fn not_an_object() -> serde_json::Error {
    ser::Error::custom("not a JSON object")
}

/// A serializer for a document's top level only.
struct TopLevel<'a, 'b>(&'a BTreeSet<&'b str>);

/// The members named, collected as the document serializes them.
struct Collect<'a, 'b> {
    members: &'a BTreeSet<&'b str>,
    kept: Map<String, Value>,
    key: Option<String>,
}

impl<'a, 'b> TopLevel<'a, 'b> {
    fn collect(self) -> Collect<'a, 'b> {
        Collect {
            members: self.0,
            kept: Map::new(),
            key: None,
        }
    }
}

macro_rules! not_objects {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> serde_json::Result<Self::Ok> {
            Err(not_an_object())
        })*
    };
}

impl<'a, 'b> Serializer for TopLevel<'a, 'b> {
    type Ok = Map<String, Value>;
    type Error = serde_json::Error;
    type SerializeSeq = Impossible<Self::Ok, Self::Error>;
    type SerializeTuple = Impossible<Self::Ok, Self::Error>;
    type SerializeTupleStruct = Impossible<Self::Ok, Self::Error>;
    type SerializeTupleVariant = Impossible<Self::Ok, Self::Error>;
    type SerializeMap = Collect<'a, 'b>;
    type SerializeStruct = Collect<'a, 'b>;
    type SerializeStructVariant = Impossible<Self::Ok, Self::Error>;

    not_objects!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> serde_json::Result<Self::Ok> {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> serde_json::Result<Self::Ok> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> serde_json::Result<Self::Ok> {
        Err(not_an_object())
    }
    fn serialize_seq(self, _: Option<usize>) -> serde_json::Result<Self::SerializeSeq> {
        Err(not_an_object())
    }
    fn serialize_tuple(self, _: usize) -> serde_json::Result<Self::SerializeTuple> {
        Err(not_an_object())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> serde_json::Result<Self::SerializeTupleStruct> {
        Err(not_an_object())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> serde_json::Result<Self::SerializeTupleVariant> {
        Err(not_an_object())
    }
    fn serialize_map(self, _: Option<usize>) -> serde_json::Result<Self::SerializeMap> {
        Ok(self.collect())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> serde_json::Result<Self::SerializeStruct> {
        Ok(self.collect())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> serde_json::Result<Self::SerializeStructVariant> {
        Err(not_an_object())
    }
}

impl Collect<'_, '_> {
    fn member<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> serde_json::Result<()> {
        if self.members.contains(key.as_str()) {
            let value = serde_json::to_value(value)?;
            self.kept.insert(key, value);
        }
        Ok(())
    }
}

impl SerializeMap for Collect<'_, '_> {
    type Ok = Map<String, Value>;
    type Error = serde_json::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> serde_json::Result<()> {
        match serde_json::to_value(key)? {
            Value::String(key) => self.key = Some(key),
            _ => return Err(ser::Error::custom("a member's name is not a string")),
        }
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<()> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ser::Error::custom("a value without its name"))?;
        self.member(key, value)
    }
    fn end(self) -> serde_json::Result<Self::Ok> {
        Ok(self.kept)
    }
}

impl SerializeStruct for Collect<'_, '_> {
    type Ok = Map<String, Value>;
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        self.member(key.to_string(), value)
    }
    fn end(self) -> serde_json::Result<Self::Ok> {
        Ok(self.kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Inner {
        name: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        gone: Option<u8>,
        none: Option<u8>,
    }

    #[derive(Serialize)]
    struct Doc {
        #[serde(flatten)]
        inner: Inner,
        sections: Vec<Value>,
        version: Value,
    }

    fn doc() -> Doc {
        Doc {
            inner: Inner {
                name: "Squirrel",
                gone: None,
                none: None,
            },
            sections: vec![json!({"name": "History", "parts": [1, 2]})],
            version: json!({"identifier": 7, "editor": {"name": "x"}}),
        }
    }

    #[test]
    fn the_members_of_a_document_are_those_written_out_and_read_back() {
        let written = serde_json::to_vec(&doc()).expect("JSON");
        for names in [
            vec!["name"],
            vec!["sections", "version"],
            vec!["none", "gone", "nothing"],
            vec![],
            vec!["name", "none", "sections", "version"],
        ] {
            let names: BTreeSet<&str> = names.into_iter().collect();
            let made = members_of(&doc(), &names).expect("an object");
            let read = parse_members(&written, &names).expect("an object");
            assert_eq!(made, read, "{names:?}");
        }
        let all = BTreeSet::from(["name", "none", "sections", "version"]);
        assert_eq!(
            members_of(&doc(), &all).expect("an object"),
            serde_json::to_value(doc()).expect("a value")
        );
        // A map serializes as an object too (a `Value` among them).
        let value = json!({"a": 1, "b": {"c": 2}});
        assert_eq!(
            members_of(&value, &BTreeSet::from(["b"])).expect("an object"),
            json!({"b": {"c": 2}})
        );
        // Anything else is refused.
        assert!(members_of(&json!([1]), &all).is_err());
        assert!(members_of("text", &all).is_err());
        assert!(members_of(&7u8, &all).is_err());
    }

    #[test]
    fn parsing_keeps_the_last_of_duplicates_and_checks_what_it_reads_past() {
        let names = BTreeSet::from(["a"]);
        assert_eq!(
            parse_members(br#"{"a": 1, "b": [2], "a": 3}"#, &names).expect("an object"),
            json!({"a": 3})
        );
        assert!(parse_members(br#"{"a": 1, "b": [2,}"#, &names).is_err());
        assert!(parse_members(br#"{"a": 1} trailing"#, &names).is_err());
        assert!(parse_members(br#"[{"a": 1}]"#, &names).is_err());
    }
}
