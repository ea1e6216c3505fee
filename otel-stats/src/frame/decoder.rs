use std::fmt;

use bytes::Bytes;

/// The length of the gRPC message prefix: a compressed flag byte and a big-endian `u32` length.
pub const PREFIX_LEN: usize = 5;

/// One complete gRPC message found by the [`FrameDecoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The compressed flag of the prefix.
    pub compressed: bool,
    /// The length the prefix declared, which is the number of message bytes that followed it.
    pub len: u32,
    /// The message bytes, when they all came in the frame that completed the message (a cheap
    /// slice of that frame); `None` when the message was split across frames.
    pub data: Option<Bytes>,
}

impl Message {
    /// The message's size on the wire: the prefix plus the message bytes.
    pub fn wire_len(&self) -> usize {
        PREFIX_LEN + self.len as usize
    }
}

/// Why a byte stream is not well-formed gRPC framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The compressed flag byte was neither 0 nor 1.
    InvalidCompressedFlag(u8),
    /// The stream ended inside a message prefix or a message body.
    Truncated {
        /// Bytes the current prefix or message still needed.
        missing: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::InvalidCompressedFlag(b) => {
                write!(f, "invalid gRPC compressed flag {b:#04x} (expected 0 or 1)")
            }
            FrameError::Truncated { missing } => {
                write!(
                    f,
                    "stream ended inside a gRPC message ({missing} bytes missing)"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Finds the gRPC messages in a body, frame by frame.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use otel_stats::frame::FrameDecoder;
///
/// let mut decoder = FrameDecoder::new();
/// let mut sizes = Vec::new();
/// // One message split across two frames, then two messages in one frame.
/// for frame in [&b"\0\0\0\0\x03a"[..], b"bc\0\0\0\0\x01x\x01\0\0\0\0"] {
///     decoder
///         .decode(&Bytes::copy_from_slice(frame), |m| sizes.push((m.compressed, m.len)))
///         .unwrap();
/// }
/// decoder.finish().unwrap();
/// assert_eq!(sizes, [(false, 3), (false, 1), (true, 0)]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FrameDecoder {
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    /// Reading a prefix; `filled` bytes of it are in `buf`.
    Prefix { buf: [u8; PREFIX_LEN], filled: u8 },
    /// Skipping over a message body.
    Body {
        compressed: bool,
        len: u32,
        remaining: u32,
    },
    /// The stream was malformed; nothing more is decoded.
    Failed(FrameError),
}

impl Default for State {
    fn default() -> Self {
        State::Prefix {
            buf: [0; PREFIX_LEN],
            filled: 0,
        }
    }
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next frame of the stream, calling `on_message` for each message it completes.
    ///
    /// After an error every later call returns the same error and finds nothing.
    pub fn decode(
        &mut self,
        frame: &Bytes,
        mut on_message: impl FnMut(Message),
    ) -> Result<(), FrameError> {
        let mut pos = 0;
        while pos < frame.len() {
            match &mut self.state {
                State::Failed(e) => return Err(*e),
                State::Prefix { buf, filled } => {
                    let need = PREFIX_LEN - *filled as usize;
                    let take = need.min(frame.len() - pos);
                    let start = *filled as usize;
                    buf[start..start + take].copy_from_slice(&frame[pos..pos + take]);
                    pos += take;
                    *filled += take as u8;
                    if (*filled as usize) < PREFIX_LEN {
                        break;
                    }
                    let compressed = match buf[0] {
                        0 => false,
                        1 => true,
                        b => {
                            let e = FrameError::InvalidCompressedFlag(b);
                            self.state = State::Failed(e);
                            return Err(e);
                        }
                    };
                    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
                    self.state = State::Body {
                        compressed,
                        len,
                        remaining: len,
                    };
                    if len == 0 {
                        on_message(Message {
                            compressed,
                            len,
                            data: Some(Bytes::new()),
                        });
                        self.state = State::default();
                    }
                }
                State::Body {
                    compressed,
                    len,
                    remaining,
                } => {
                    let available = frame.len() - pos;
                    let whole = *remaining == *len;
                    if (*remaining as usize) > available {
                        // `available` < `remaining` <= u32::MAX, so this fits.
                        *remaining -= available as u32;
                        break;
                    }
                    let end = pos + *remaining as usize;
                    let data = whole.then(|| frame.slice(pos..end));
                    on_message(Message {
                        compressed: *compressed,
                        len: *len,
                        data,
                    });
                    pos = end;
                    self.state = State::default();
                }
            }
        }
        match self.state {
            State::Failed(e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Says whether the stream may end here: `Ok` between messages, an error inside one.
    pub fn finish(&self) -> Result<(), FrameError> {
        match &self.state {
            State::Prefix { filled: 0, .. } => Ok(()),
            State::Prefix { filled, .. } => Err(FrameError::Truncated {
                missing: (PREFIX_LEN - *filled as usize) as u64,
            }),
            State::Body { remaining, .. } => Err(FrameError::Truncated {
                missing: u64::from(*remaining),
            }),
            State::Failed(e) => Err(*e),
        }
    }

    /// `true` once a malformed byte was seen.
    pub fn failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(messages: &[(bool, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (compressed, body) in messages {
            out.push(u8::from(*compressed));
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    /// Splits `bytes` at the given cut points (taken modulo its length) and decodes the pieces.
    fn decode_split(bytes: &[u8], cuts: &[usize]) -> (Vec<Message>, Result<(), FrameError>) {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| if bytes.is_empty() { 0 } else { c % bytes.len() })
            .collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();
        points.dedup();
        let mut decoder = FrameDecoder::new();
        let mut found = Vec::new();
        let mut result = Ok(());
        for w in points.windows(2) {
            let frame = Bytes::copy_from_slice(&bytes[w[0]..w[1]]);
            if let Err(e) = decoder.decode(&frame, |m| found.push(m)) {
                result = Err(e);
            }
        }
        (found, result.and_then(|()| decoder.finish()))
    }

    #[test]
    fn four_gib_declared_length_allocates_nothing_and_reports_truncation() {
        let mut decoder = FrameDecoder::new();
        let frame = Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let mut found = 0;
        decoder.decode(&frame, |_| found += 1).unwrap();
        assert_eq!(found, 0);
        assert_eq!(
            decoder.finish(),
            Err(FrameError::Truncated {
                missing: u64::from(u32::MAX) - 3
            })
        );
    }

    #[test]
    fn truncated_prefix() {
        let (found, result) = decode_split(&[0, 0, 0], &[]);
        assert!(found.is_empty());
        assert_eq!(result, Err(FrameError::Truncated { missing: 2 }));
    }

    #[test]
    fn invalid_flag_is_sticky() {
        let mut decoder = FrameDecoder::new();
        let frame = Bytes::from_static(&[2, 0, 0, 0, 0]);
        assert_eq!(
            decoder.decode(&frame, |_| panic!("no message")),
            Err(FrameError::InvalidCompressedFlag(2))
        );
        let good = Bytes::from(encode(&[(false, vec![1])]));
        assert!(decoder.decode(&good, |_| panic!("no message")).is_err());
        assert!(decoder.failed());
    }

    #[test]
    fn empty_messages_and_slices() {
        let bytes = Bytes::from(encode(&[(false, vec![]), (true, b"abc".to_vec())]));
        let mut decoder = FrameDecoder::new();
        let mut found = Vec::new();
        decoder.decode(&bytes, |m| found.push(m)).unwrap();
        assert_eq!(found[0].len, 0);
        assert_eq!(found[1].data.as_deref(), Some(&b"abc"[..]));
        assert!(found[1].compressed);
    }

    proptest! {
        #[test]
        fn any_split_finds_the_same_messages(
            messages in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)), 0..8),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes = encode(&messages);
            let (found, result) = decode_split(&bytes, &cuts);
            prop_assert_eq!(result, Ok(()));
            prop_assert_eq!(found.len(), messages.len());
            for (m, (compressed, body)) in found.iter().zip(&messages) {
                prop_assert_eq!(m.compressed, *compressed);
                prop_assert_eq!(m.len as usize, body.len());
                if let Some(data) = &m.data {
                    prop_assert_eq!(&data[..], &body[..]);
                }
            }
            // Unsplit, every message comes with its bytes.
            let (whole, _) = decode_split(&bytes, &[]);
            prop_assert!(whole.iter().all(|m| m.data.is_some()));
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_split_does_not_matter(
            bytes in prop::collection::vec(any::<u8>(), 0..2048),
            cuts in prop::collection::vec(any::<usize>(), 0..16),
        ) {
            let (split, split_result) = decode_split(&bytes, &cuts);
            let (whole, whole_result) = decode_split(&bytes, &[]);
            prop_assert_eq!(split_result, whole_result);
            let lens = |ms: &[Message]| ms.iter().map(|m| (m.compressed, m.len)).collect::<Vec<_>>();
            prop_assert_eq!(lens(&split), lens(&whole));
            let consumed: usize = whole.iter().map(Message::wire_len).sum();
            prop_assert!(consumed <= bytes.len());
        }
    }
}
