//! The encoding of wray values, shared by guests (the `wray` SDK) and hosts
//! (`wray-runtime`, for embedders that call a job's functions directly).
//!
//! A value is any `serde` type. Three encodings exist, chosen by the value's
//! static type:
//!
//! * **[`Value`]** — plain data that Python jobs read and write too — is
//!   wray's self-describing cross-language encoding ([`value`] documents
//!   its bytes).
//! * **Numeric buffers** — `Vec<T>` for `T` in `u8 i8 u16 i16 u32 i32 u64 i64
//!   f32 f64` — are their elements' little-endian bytes, concatenated, with no
//!   header (the length follows from the byte count). Encoding and decoding
//!   is one `memcpy`, never a per-element loop, so a 1 GiB `Vec<f32>` moves at
//!   memory bandwidth.
//! * **Everything else** is [postcard] 1.x: compact, deterministic, and
//!   specified independently of this crate.
//!
//! The choice is made with [`Any`] on the concrete type, so it costs nothing
//! at run time. Buffers nested *inside* other types (a struct field) use
//! postcard, which writes numbers one by one; put large buffers in a value of
//! their own to get the fast path.

#![deny(missing_docs)]

pub mod http;
pub mod value;

pub use value::Value;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::fmt;

/// A value's bytes do not decode as the requested type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The Rust type that was requested.
    pub type_name: &'static str,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot decode value as {}: {}", self.type_name, self.reason)
    }
}

impl std::error::Error for DecodeError {}

/// A value could not be encoded (a serde `Serialize` impl reported an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// The Rust type being encoded.
    pub type_name: &'static str,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode {}: {}", self.type_name, self.reason)
    }
}

impl std::error::Error for EncodeError {}

/// Plain-old-data numbers whose `Vec`s are encoded by memcpy.
///
/// # Safety
/// Implementors must be `Copy` types with no padding for which every bit
/// pattern is a valid value.
unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty),*) => { $(
        // SAFETY: primitive numbers: no padding, every bit pattern valid.
        unsafe impl Pod for $t {}
    )* };
}
pod!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

fn pod_bytes<P: Pod>(v: &[P]) -> &[u8] {
    // SAFETY: `P: Pod` has no padding, so its memory is `size_of_val(v)`
    // initialised bytes; the lifetime is tied to `v`.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

fn pod_from_bytes<P: Pod>(bytes: &[u8]) -> Option<Vec<P>> {
    let size = std::mem::size_of::<P>();
    if !bytes.len().is_multiple_of(size) {
        return None;
    }
    let n = bytes.len() / size;
    let mut out = Vec::<P>::with_capacity(n);
    // SAFETY: `out` has capacity for `n` elements = `bytes.len()` bytes; the
    // regions do not overlap; every bit pattern is a valid `P` (Pod), so the
    // first `n` elements are initialised after the copy.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().cast::<u8>(), bytes.len());
        out.set_len(n);
    }
    Some(out)
}

/// Calls `$body` with `$v: &Vec<P>` if `$value` is a `Vec` of a Pod type.
macro_rules! with_pod_vec {
    ($value:expr, |$v:ident| $body:expr) => {{
        let any: &dyn Any = $value;
        if let Some($v) = any.downcast_ref::<Vec<u8>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<f32>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<f64>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<i32>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<u32>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<i64>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<u64>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<i16>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<u16>>() {
            Some($body)
        } else if let Some($v) = any.downcast_ref::<Vec<i8>>() {
            Some($body)
        } else {
            None
        }
    }};
}

/// Whether `T` takes the memcpy path.
pub fn is_buffer<T: 'static>() -> bool {
    use std::any::TypeId;
    [
        TypeId::of::<Vec<u8>>(),
        TypeId::of::<Vec<f32>>(),
        TypeId::of::<Vec<f64>>(),
        TypeId::of::<Vec<i32>>(),
        TypeId::of::<Vec<u32>>(),
        TypeId::of::<Vec<i64>>(),
        TypeId::of::<Vec<u64>>(),
        TypeId::of::<Vec<i16>>(),
        TypeId::of::<Vec<u16>>(),
        TypeId::of::<Vec<i8>>(),
    ]
    .contains(&TypeId::of::<T>())
}

/// The encoding of `value` without copying it, when `T` is a numeric buffer
/// (its elements' bytes are the encoding); `None` for other types.
pub fn buffer_bytes<T: 'static>(value: &T) -> Option<&[u8]> {
    if cfg!(target_endian = "little") { with_pod_vec!(value, |v| pod_bytes(v)) } else { None }
}

/// Encodes `value`, appending to `out`.
pub fn encode_into<T: Serialize + 'static>(value: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if let Some(v) = (value as &dyn Any).downcast_ref::<Value>() {
        let bytes = v.to_bytes();
        if out.is_empty() {
            *out = bytes;
        } else {
            out.extend_from_slice(&bytes);
        }
        return Ok(());
    }
    if cfg!(target_endian = "little") && with_pod_vec!(value, |v| out.extend_from_slice(pod_bytes(v))).is_some() {
        return Ok(());
    }
    let start = std::mem::take(out);
    match postcard::to_extend(value, start) {
        Ok(buf) => {
            *out = buf;
            Ok(())
        }
        Err(e) => Err(EncodeError { type_name: std::any::type_name::<T>(), reason: e.to_string() }),
    }
}

/// Encodes `value`.
pub fn encode<T: Serialize + 'static>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes a `T` from `bytes`. All of `bytes` must be consumed.
pub fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, DecodeError> {
    let err = |reason: String| DecodeError { type_name: std::any::type_name::<T>(), reason };
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<Value>() {
        let mut slot = Some(Value::from_bytes(bytes).map_err(|e| err(e.0))?);
        return Ok((&mut slot as &mut dyn Any).downcast_mut::<Option<T>>().and_then(Option::take).expect("T is Value"));
    }
    if cfg!(target_endian = "little") && is_buffer::<T>() {
        return decode_pod::<T>(bytes)
            .ok_or_else(|| err(format!("{} bytes is not a whole number of elements", bytes.len())));
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| err(foreign(bytes).unwrap_or(e.to_string())))?;
    if !rest.is_empty() {
        return Err(err(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

/// Why bytes that did not decode may be another language's value: said
/// instead of whatever postcard made of them. (Only a failure is explained
/// so: a Rust value may begin with the same bytes.)
fn foreign(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(&value::MAGIC) {
        Some("this is a wray::Value (sent from another language, such as a Python job): take a wray::Value here".into())
    } else if bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|p| (2..=5).contains(p)) {
        Some(
            "this looks like a Python pickle: values from Python jobs reach Rust as a wray::Value (plain data only)"
                .into(),
        )
    } else {
        None
    }
}

fn decode_pod<T: 'static>(bytes: &[u8]) -> Option<T> {
    fn cast<T: 'static, P: Pod>(bytes: &[u8]) -> Option<T> {
        let mut slot = Some(pod_from_bytes::<P>(bytes)?);
        (&mut slot as &mut dyn Any).downcast_mut::<Option<T>>()?.take()
    }
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    if t == TypeId::of::<Vec<u8>>() {
        cast::<T, u8>(bytes)
    } else if t == TypeId::of::<Vec<f32>>() {
        cast::<T, f32>(bytes)
    } else if t == TypeId::of::<Vec<f64>>() {
        cast::<T, f64>(bytes)
    } else if t == TypeId::of::<Vec<i32>>() {
        cast::<T, i32>(bytes)
    } else if t == TypeId::of::<Vec<u32>>() {
        cast::<T, u32>(bytes)
    } else if t == TypeId::of::<Vec<i64>>() {
        cast::<T, i64>(bytes)
    } else if t == TypeId::of::<Vec<u64>>() {
        cast::<T, u64>(bytes)
    } else if t == TypeId::of::<Vec<i16>>() {
        cast::<T, i16>(bytes)
    } else if t == TypeId::of::<Vec<u16>>() {
        cast::<T, u16>(bytes)
    } else if t == TypeId::of::<Vec<i8>>() {
        cast::<T, i8>(bytes)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn a_top_level_value_takes_the_cross_language_encoding() {
        let v = Value::dict([("k", Value::from(vec![1.0f64, 2.0]))]);
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes, v.to_bytes());
        assert_eq!(decode::<Value>(&bytes).unwrap(), v);
        // A Rust type where another language's value arrived: the error
        // says what arrived and what to take instead.
        let e = decode::<(String, u64)>(&bytes).unwrap_err();
        assert!(e.reason.contains("take a wray::Value"), "{e}");
        let pickle = [0x80, 0x05, 0x95, 0x0b, 0x00, 0x00];
        let e = decode::<String>(&pickle).unwrap_err();
        assert!(e.reason.contains("Python pickle"), "{e}");
        // Bytes that happen to begin like one still decode as what they are.
        assert_eq!(decode::<Vec<u8>>(&pickle).unwrap(), pickle.to_vec());
        assert_eq!(decode::<Vec<u8>>(&bytes).unwrap(), bytes);
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Point {
        name: String,
        xs: Vec<f32>,
        tag: Option<(u8, i64)>,
    }

    #[test]
    fn buffers_are_raw_little_endian_bytes() {
        let v: Vec<f32> = vec![1.0, -2.5, f32::MAX];
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes.len(), 12);
        assert_eq!(&bytes[0..4], &1.0f32.to_le_bytes());
        assert_eq!(decode::<Vec<f32>>(&bytes).unwrap(), v);
        let b: Vec<u8> = (0..=255).collect();
        assert_eq!(encode(&b).unwrap(), b);
        assert_eq!(decode::<Vec<u8>>(&b).unwrap(), b);
        assert!(decode::<Vec<f64>>(&[0u8; 7]).is_err());
    }

    #[test]
    fn other_values_round_trip_through_postcard() {
        let p = Point { name: "a".into(), xs: vec![0.5; 3], tag: Some((7, -9)) };
        assert_eq!(decode::<Point>(&encode(&p).unwrap()).unwrap(), p);
        assert_eq!(decode::<u64>(&encode(&42u64).unwrap()).unwrap(), 42);
        assert_eq!(decode::<()>(&encode(&()).unwrap()).unwrap(), ());
        let r: Result<i32, String> = Err("no".into());
        assert_eq!(decode::<Result<i32, String>>(&encode(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn trailing_or_truncated_bytes_are_errors() {
        let mut bytes = encode(&(1u32, 2u32)).unwrap();
        bytes.push(0);
        let e = decode::<(u32, u32)>(&bytes).unwrap_err();
        assert!(e.reason.contains("trailing"), "{e}");
        assert!(decode::<String>(&[5, b'a']).is_err());
    }
}
