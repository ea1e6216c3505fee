//! `FrameDecoder` against arbitrary bytes cut into frames at arbitrary points, checked against
//! a reference decoder of the whole stream: the same messages (flag, length, bytes) and the
//! same error whatever the cuts, `data` exactly when the body came in one frame, and nothing
//! found after an error.

#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use otel_stats::frame::{FrameDecoder, FrameError, Message, PREFIX_LEN};

#[derive(Arbitrary, Debug)]
struct Input {
    cuts: Vec<u16>,
    /// Also feed the stream one byte per frame.
    bytewise: bool,
    bytes: Vec<u8>,
}

/// The messages of a whole stream, each with its offset, and how the stream ends.
fn reference(bytes: &[u8]) -> (Vec<(usize, Message)>, Result<(), FrameError>) {
    let mut found = Vec::new();
    let mut off = 0;
    loop {
        let rest = bytes.len() - off;
        if rest == 0 {
            return (found, Ok(()));
        }
        // The flag is judged once the whole prefix is in: a stream that ends inside a prefix
        // is truncated, whatever its first byte.
        if rest < PREFIX_LEN {
            return (
                found,
                Err(FrameError::Truncated {
                    missing: (PREFIX_LEN - rest) as u64,
                }),
            );
        }
        let flag = bytes[off];
        if flag > 1 {
            return (found, Err(FrameError::InvalidCompressedFlag(flag)));
        }
        let len = u32::from_be_bytes(bytes[off + 1..off + 5].try_into().unwrap());
        let end = off as u64 + PREFIX_LEN as u64 + u64::from(len);
        if end > bytes.len() as u64 {
            return (
                found,
                Err(FrameError::Truncated {
                    missing: end - bytes.len() as u64,
                }),
            );
        }
        let end = end as usize;
        found.push((
            off,
            Message {
                compressed: flag == 1,
                len,
                data: Some(Bytes::copy_from_slice(&bytes[off + PREFIX_LEN..end])),
            },
        ));
        off = end;
    }
}

/// Decodes `bytes` cut at `cuts` (sorted offsets); the first error, else `finish`'s verdict.
fn decode(bytes: &Bytes, cuts: &[usize]) -> (Vec<Message>, Result<(), FrameError>) {
    let mut decoder = FrameDecoder::new();
    let mut found = Vec::new();
    let mut first_error = None;
    let mut start = 0;
    for &c in cuts.iter().chain([&bytes.len()]) {
        let frame = bytes.slice(start..c);
        start = c;
        let before = found.len();
        let result = decoder.decode(&frame, |m| found.push(m));
        match (first_error, result) {
            (None, Err(e)) => first_error = Some(e),
            (Some(e), r) => {
                // Sticky: the same error again, even for an empty frame, and nothing found.
                assert_eq!(r, Err(e), "after {e:?}");
                assert_eq!(found.len(), before, "a message after an error");
            }
            (None, Ok(())) => {}
        }
        assert_eq!(
            decoder.failed(),
            first_error.is_some_and(|e| matches!(e, FrameError::InvalidCompressedFlag(_)))
        );
    }
    let result = match first_error {
        Some(e) => {
            assert_eq!(decoder.finish(), Err(e));
            Err(e)
        }
        None => decoder.finish(),
    };
    (found, result)
}

fn check(
    bytes: &Bytes,
    cuts: &[usize],
    want: &[(usize, Message)],
    want_result: Result<(), FrameError>,
) {
    let (found, result) = decode(bytes, cuts);
    assert_eq!(result, want_result, "cuts {cuts:?}");
    assert_eq!(found.len(), want.len(), "cuts {cuts:?}");
    let total: usize = found.iter().map(Message::wire_len).sum();
    assert!(total <= bytes.len());
    for (m, (off, w)) in found.iter().zip(want) {
        assert_eq!((m.compressed, m.len), (w.compressed, w.len));
        let body_start = off + PREFIX_LEN;
        let body_end = body_start + m.len as usize;
        // `data` exactly when no cut falls strictly inside the message body.
        let split = cuts.iter().any(|&c| body_start < c && c < body_end);
        match &m.data {
            Some(data) => {
                assert!(!split, "data for a split message at {off}, cuts {cuts:?}");
                assert_eq!(data.len(), m.len as usize);
                assert_eq!(Some(data), w.data.as_ref());
            }
            None => assert!(
                split,
                "no data for an unsplit message at {off}, cuts {cuts:?}"
            ),
        }
    }
}

fuzz_target!(|input: Input| {
    let bytes = Bytes::from(input.bytes);
    let (want, want_result) = reference(&bytes);

    check(&bytes, &[], &want, want_result);

    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| c as usize % (bytes.len() + 1))
        .collect();
    cuts.sort_unstable();
    check(&bytes, &cuts, &want, want_result);

    if input.bytewise {
        let every: Vec<usize> = (0..=bytes.len()).collect();
        check(&bytes, &every, &want, want_result);
    }
});
