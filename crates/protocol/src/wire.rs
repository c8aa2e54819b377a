//! The byte codec every Backchannel format is written in: big-endian
//! integers, fixed-size arrays, and length-prefixed byte strings. Decoding
//! never panics and never allocates more than the input holds.

use crate::error::DecodeError;
use crate::ids::{ChannelId, Digest, Handle, MessageId};

/// Appends encoded fields to a buffer.
#[derive(Default, Debug)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// A byte string behind a u32 length. Callers bound lengths below 4 GiB.
    pub(crate) fn bytes32(&mut self, v: &[u8]) -> &mut Self {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.raw(v)
    }
    pub(crate) fn handle(&mut self, h: &Handle) -> &mut Self {
        // Handles are at most 32 bytes, so the length fits one byte.
        self.u8(h.as_str().len() as u8);
        self.raw(h.as_str().as_bytes())
    }
    pub(crate) fn digest(&mut self, d: &Digest) -> &mut Self {
        self.raw(&d.0)
    }
}

/// Reads fields off a byte slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n - self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn bytes32(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(len, field)
    }

    pub(crate) fn string(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<String, DecodeError> {
        let b = self.bytes32(field, max)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Utf8 { field })
    }

    pub(crate) fn handle(&mut self, field: &'static str) -> Result<Handle, DecodeError> {
        let len = self.u8(field)? as usize;
        let b = self.take(len, field)?;
        let s = std::str::from_utf8(b).map_err(|_| DecodeError::Utf8 { field })?;
        Handle::new(s)
    }

    pub(crate) fn digest(&mut self, field: &'static str) -> Result<Digest, DecodeError> {
        Ok(Digest(self.array(field)?))
    }
    pub(crate) fn channel_id(&mut self) -> Result<ChannelId, DecodeError> {
        Ok(ChannelId(self.array("channel_id")?))
    }
    pub(crate) fn message_id(&mut self, field: &'static str) -> Result<MessageId, DecodeError> {
        Ok(MessageId(self.array(field)?))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: self.rest.len(),
            })
        }
    }
}
