//! [`Value`]: plain data that crosses between languages — a Rust job and a
//! Python job calling each other's actors — in one documented encoding.
//!
//! Rust values are otherwise postcard and Python values pickle, and
//! neither side can read the other's: postcard is not self-describing (the
//! reader must know the type) and pickle is Python's own. A `Value` is
//! self-describing, so each side reads it without knowing what the other
//! meant: `None`, booleans, 64-bit integers, 64-bit floats, strings, bytes,
//! lists, dicts (any plain keys, in order) and numeric arrays.
//!
//! # The encoding (version 1)
//!
//! ```text
//! document := MAGIC item                    MAGIC = F5 77 76 01 ("\xf5wv\x01")
//! item     := tag payload
//!   00 none             01 false            02 true
//!   03 int     i64, little-endian
//!   04 float   f64, little-endian (IEEE 754)
//!   05 str     u32 LE byte length, then UTF-8
//!   06 bytes   u32 LE length, then the bytes
//!   07 list    u32 LE count, then count items
//!   08 dict    u32 LE count, then count (key item, value item) pairs
//!   09 f64 array   u32 LE count, then count f64 LE
//!   0A f32 array   u32 LE count, then count f32 LE
//!   0B i64 array   u32 LE count, then count i64 LE
//!   0C i32 array   u32 LE count, then count i32 LE
//! ```
//!
//! The magic's first byte is never a pickle's (`80`), so a Python reader
//! tells the two apart; a document is read whole (trailing bytes are an
//! error), nesting is bounded by [`MAX_DEPTH`], and no length is trusted
//! beyond the bytes that are there. The Python SDK's `wray._value` reads
//! and writes the same bytes.
//!
//! [`encode`](crate::encode) and [`decode`](crate::decode) use this
//! encoding when the value's type is `Value` itself; a `Value` nested inside
//! another Rust type is written as that type's postcard, which only Rust
//! reads.

use std::fmt;

/// The first bytes of every encoded [`Value`].
pub const MAGIC: [u8; 4] = [0xF5, b'w', b'v', 0x01];

/// How deeply lists and dicts may nest in a value that is read: a peer's
/// bytes must not exhaust the reader's stack.
pub const MAX_DEPTH: usize = 128;

/// Plain data, as both Rust and Python jobs read it. Build one with `From`
/// (`Value::from(3)`, `Value::from("x")`, `Value::from(vec![1.0, 2.0])`,
/// [`Value::dict`]) and read it with the `as_*` accessors and
/// [`Value::get`].
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// Python's `None`.
    #[default]
    None,
    /// A boolean.
    Bool(bool),
    /// An integer (Python ints beyond 64 bits are not plain data).
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string.
    Str(String),
    /// A byte string (Python `bytes`).
    Bytes(Vec<u8>),
    /// A list (Python `list`).
    List(Vec<Value>),
    /// A dict: keys and values in order (Python `dict`).
    Dict(Vec<(Value, Value)>),
    /// An array of f64 (Python `array.array('d')`).
    F64Array(Vec<f64>),
    /// An array of f32 (Python `array.array('f')`).
    F32Array(Vec<f32>),
    /// An array of i64 (Python `array.array('q')`).
    I64Array(Vec<i64>),
    /// An array of i32 (Python `array.array('i')`).
    I32Array(Vec<i32>),
}

/// Bytes that are not an encoded [`Value`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError(pub String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

mod tag {
    pub const NONE: u8 = 0x00;
    pub const FALSE: u8 = 0x01;
    pub const TRUE: u8 = 0x02;
    pub const INT: u8 = 0x03;
    pub const FLOAT: u8 = 0x04;
    pub const STR: u8 = 0x05;
    pub const BYTES: u8 = 0x06;
    pub const LIST: u8 = 0x07;
    pub const DICT: u8 = 0x08;
    pub const F64S: u8 = 0x09;
    pub const F32S: u8 = 0x0A;
    pub const I64S: u8 = 0x0B;
    pub const I32S: u8 = 0x0C;
}

impl Value {
    /// A dict from `(key, value)` pairs.
    pub fn dict<K: Into<Value>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Dict(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The value under `key` in a dict whose keys are strings.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether this is `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// A boolean's value.
    pub fn as_bool(&self) -> Option<bool> {
        if let Value::Bool(b) = self { Some(*b) } else { None }
    }

    /// An integer's value.
    pub fn as_i64(&self) -> Option<i64> {
        if let Value::Int(i) = self { Some(*i) } else { None }
    }

    /// A number's value: a float, or an integer converted (as Python mixes
    /// them).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// A string's value.
    pub fn as_str(&self) -> Option<&str> {
        if let Value::Str(s) = self { Some(s) } else { None }
    }

    /// A byte string's value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        if let Value::Bytes(b) = self { Some(b) } else { None }
    }

    /// A list's items.
    pub fn as_list(&self) -> Option<&[Value]> {
        if let Value::List(l) = self { Some(l) } else { None }
    }

    /// A dict's pairs.
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        if let Value::Dict(d) = self { Some(d) } else { None }
    }

    /// Numbers as f64s: an f64 or f32 array, or a list of numbers.
    pub fn to_f64s(&self) -> Option<Vec<f64>> {
        match self {
            Value::F64Array(v) => Some(v.clone()),
            Value::F32Array(v) => Some(v.iter().map(|&x| f64::from(x)).collect()),
            Value::I64Array(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Value::I32Array(v) => Some(v.iter().map(|&x| f64::from(x)).collect()),
            Value::List(l) => l.iter().map(Value::as_f64).collect(),
            _ => None,
        }
    }

    /// The name of this value's kind, as errors say it.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "none",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::F64Array(_) => "f64 array",
            Value::F32Array(_) => "f32 array",
            Value::I64Array(_) => "i64 array",
            Value::I32Array(_) => "i32 array",
        }
    }

    /// The encoded document: [`MAGIC`], then the item.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        self.write(&mut out);
        out
    }

    /// Reads an encoded document (all of `bytes`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Value, ValueError> {
        let rest = bytes.strip_prefix(&MAGIC[..]).ok_or_else(|| {
            ValueError(match bytes.first() {
                Some(0x80) => "this is a Python pickle, not a wray value: only plain data crosses languages".into(),
                _ => "these bytes are not a wray value (no magic)".into(),
            })
        })?;
        let mut reader = Reader { bytes: rest, at: 0 };
        let value = reader.item(0)?;
        if reader.at != rest.len() {
            return Err(ValueError(format!("{} trailing bytes after the value", rest.len() - reader.at)));
        }
        Ok(value)
    }

    fn write(&self, out: &mut Vec<u8>) {
        fn len(out: &mut Vec<u8>, n: usize) {
            let n = u32::try_from(n).expect("a value's lists, strings and arrays hold at most 2^32 - 1 items");
            out.extend_from_slice(&n.to_le_bytes());
        }
        macro_rules! array {
            ($tag:expr, $v:expr) => {{
                out.push($tag);
                len(out, $v.len());
                for x in $v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }};
        }
        match self {
            Value::None => out.push(tag::NONE),
            Value::Bool(false) => out.push(tag::FALSE),
            Value::Bool(true) => out.push(tag::TRUE),
            Value::Int(i) => {
                out.push(tag::INT);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(tag::FLOAT);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Str(s) => {
                out.push(tag::STR);
                len(out, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) => {
                out.push(tag::BYTES);
                len(out, b.len());
                out.extend_from_slice(b);
            }
            Value::List(items) => {
                out.push(tag::LIST);
                len(out, items.len());
                for item in items {
                    item.write(out);
                }
            }
            Value::Dict(pairs) => {
                out.push(tag::DICT);
                len(out, pairs.len());
                for (k, v) in pairs {
                    k.write(out);
                    v.write(out);
                }
            }
            Value::F64Array(v) => array!(tag::F64S, v),
            Value::F32Array(v) => array!(tag::F32S, v),
            Value::I64Array(v) => array!(tag::I64S, v),
            Value::I32Array(v) => array!(tag::I32S, v),
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        let end =
            self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
                ValueError(format!("the value ends early: {n} more bytes needed at offset {}", self.at))
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    /// A count of items at least `min_size` bytes each, checked against
    /// the bytes left before anything is allocated for them.
    fn count(&mut self, min_size: usize) -> Result<usize, ValueError> {
        let n = u32::from_le_bytes(self.fixed()?) as usize;
        let left = self.bytes.len() - self.at;
        if n.saturating_mul(min_size) > left {
            return Err(ValueError(format!("a length of {n} at offset {} runs past the value's end", self.at - 4)));
        }
        Ok(n)
    }

    fn array<T, const N: usize>(&mut self, from: fn([u8; N]) -> T) -> Result<Vec<T>, ValueError> {
        let n = self.count(N)?;
        let bytes = self.take(n * N)?;
        Ok(bytes.chunks_exact(N).map(|c| from(c.try_into().expect("N bytes"))).collect())
    }

    fn item(&mut self, depth: usize) -> Result<Value, ValueError> {
        if depth > MAX_DEPTH {
            return Err(ValueError(format!("lists and dicts nest deeper than {MAX_DEPTH}")));
        }
        let [t] = self.fixed()?;
        Ok(match t {
            tag::NONE => Value::None,
            tag::FALSE => Value::Bool(false),
            tag::TRUE => Value::Bool(true),
            tag::INT => Value::Int(i64::from_le_bytes(self.fixed()?)),
            tag::FLOAT => Value::Float(f64::from_le_bytes(self.fixed()?)),
            tag::STR => {
                let n = self.count(1)?;
                let at = self.at;
                let s = std::str::from_utf8(self.take(n)?)
                    .map_err(|e| ValueError(format!("a string at offset {at} is not UTF-8: {e}")))?;
                Value::Str(s.to_string())
            }
            tag::BYTES => {
                let n = self.count(1)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            tag::LIST => {
                let n = self.count(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::List(items)
            }
            tag::DICT => {
                let n = self.count(2)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.item(depth + 1)?;
                    pairs.push((k, self.item(depth + 1)?));
                }
                Value::Dict(pairs)
            }
            tag::F64S => Value::F64Array(self.array(f64::from_le_bytes)?),
            tag::F32S => Value::F32Array(self.array(f32::from_le_bytes)?),
            tag::I64S => Value::I64Array(self.array(i64::from_le_bytes)?),
            tag::I32S => Value::I32Array(self.array(i32::from_le_bytes)?),
            other => return Err(ValueError(format!("unknown tag {other:#04x} at offset {}", self.at - 1))),
        })
    }
}

macro_rules! from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => { $(
        impl From<$t> for Value {
            fn from($v: $t) -> Value {
                $e
            }
        }
    )* };
}

from! {
    bool => |v| Value::Bool(v),
    i64 => |v| Value::Int(v),
    i32 => |v| Value::Int(i64::from(v)),
    u32 => |v| Value::Int(i64::from(v)),
    f64 => |v| Value::Float(v),
    f32 => |v| Value::Float(f64::from(v)),
    String => |v| Value::Str(v),
    &str => |v| Value::Str(v.to_string()),
    Vec<f64> => |v| Value::F64Array(v),
    Vec<f32> => |v| Value::F32Array(v),
    Vec<i64> => |v| Value::I64Array(v),
    Vec<i32> => |v| Value::I32Array(v),
    Vec<Value> => |v| Value::List(v),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::None, Into::into)
    }
}

/// Within Rust, a `Value` nested in another type travels as any serde
/// value (postcard); the cross-language encoding is for a top-level `Value`.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        let bytes = <serde_bytes_buf::Buf>::deserialize(d)?;
        Value::from_bytes(&bytes.0).map_err(serde::de::Error::custom)
    }
}

/// A byte buffer read through `deserialize_bytes` (postcard's form of
/// `serialize_bytes`), without depending on `serde_bytes`.
mod serde_bytes_buf {
    pub struct Buf(pub Vec<u8>);

    impl<'de> serde::Deserialize<'de> for Buf {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Buf, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = Buf;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("the bytes of a wray value")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Buf, E> {
                    Ok(Buf(v.to_vec()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Buf, E> {
                    Ok(Buf(v))
                }
            }
            d.deserialize_bytes(Visitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        Value::dict([
            ("none", Value::None),
            ("yes", Value::from(true)),
            ("n", Value::from(-42i64)),
            ("x", Value::from(2.5)),
            ("name", Value::from("wray ✓")),
            ("raw", Value::Bytes(vec![0, 255, 7])),
            ("list", Value::List(vec![Value::from(1i64), Value::from("two"), Value::List(vec![])])),
            ("f64s", Value::from(vec![1.5f64, -0.0, f64::MAX])),
            ("f32s", Value::from(vec![0.25f32])),
            ("i64s", Value::from(vec![i64::MIN, 0, i64::MAX])),
            ("i32s", Value::from(vec![-1i32, 2])),
        ])
    }

    #[test]
    fn every_kind_round_trips() {
        let v = sample();
        assert_eq!(Value::from_bytes(&v.to_bytes()), Ok(v.clone()));
        assert_eq!(v.get("n").and_then(Value::as_i64), Some(-42));
        assert_eq!(v.get("x").and_then(Value::as_f64), Some(2.5));
        assert_eq!(v.get("name").and_then(Value::as_str), Some("wray ✓"));
        assert_eq!(v.get("f32s").and_then(Value::to_f64s), Some(vec![0.25]));
        assert!(v.get("missing").is_none());
    }

    #[test]
    fn the_bytes_are_the_documented_ones() {
        // {"a": [1, None]} by hand, as docs/PYTHON.md gives it.
        let expected: Vec<u8> = [
            &MAGIC[..],
            &[0x08, 1, 0, 0, 0],
            &[0x05, 1, 0, 0, 0, b'a'],
            &[0x07, 2, 0, 0, 0],
            &[0x03, 1, 0, 0, 0, 0, 0, 0, 0],
            &[0x00],
        ]
        .concat();
        let v = Value::dict([("a", Value::List(vec![Value::from(1i64), Value::None]))]);
        assert_eq!(v.to_bytes(), expected);
    }

    #[test]
    fn bad_bytes_are_errors_that_say_why() {
        let good = sample().to_bytes();
        // Every truncation fails cleanly, never panics.
        for cut in 0..good.len() {
            assert!(Value::from_bytes(&good[..cut]).is_err(), "cut at {cut}");
        }
        let err = |b: &[u8]| Value::from_bytes(b).unwrap_err().0;
        assert!(err(&[0x80, 5, 0x4b]).contains("Python pickle"));
        assert!(err(&[&MAGIC[..], &[0x42]].concat()).contains("unknown tag 0x42"));
        assert!(err(&[&MAGIC[..], &[0x00, 0x00]].concat()).contains("1 trailing bytes"));
        // A huge length is refused before anything is allocated for it.
        assert!(err(&[&MAGIC[..], &[0x07, 0xff, 0xff, 0xff, 0xff]].concat()).contains("runs past"));
        assert!(err(&[&MAGIC[..], &[0x05, 1, 0, 0, 0, 0xff]].concat()).contains("not UTF-8"));
        // Nesting past the bound is refused, not a stack overflow.
        let mut deep = MAGIC.to_vec();
        for _ in 0..100_000 {
            deep.extend_from_slice(&[0x07, 1, 0, 0, 0]);
        }
        deep.push(0x00);
        assert!(err(&deep).contains("nest deeper"));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let mut b = MAGIC.to_vec();
            let mut s = state;
            for _ in 0..len {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                b.push((s >> 56) as u8 % 16);
            }
            let _ = Value::from_bytes(&b);
        }
    }

    #[test]
    fn nested_in_rust_types_it_travels_as_serde() {
        let pair = (7u32, sample());
        let bytes = postcard::to_allocvec(&pair).unwrap();
        assert_eq!(postcard::from_bytes::<(u32, Value)>(&bytes).unwrap(), pair);
    }
}
