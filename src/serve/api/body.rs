//! Upload bodies as clients send them: plain, or compressed with `Content-Encoding: gzip` or
//! `zstd`. A compressed body is decoded as it arrives, and `max_body_bytes` bounds the decoded
//! bytes (and the bytes on the wire): a small body that inflates past the limit is refused
//! with `413` as soon as the limit is crossed, holding at most the limit in memory.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;

use super::ApiError;

/// The codings driftd decodes, as named in a refusal.
const ACCEPTED: &str = "gzip or zstd";

/// zstd windows above 8 MiB are refused, as HTTP's zstd coding (RFC 9659) asks: a frame could
/// otherwise make the decoder allocate up to 128 MiB before a byte is decoded.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// A body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// The coding of a request: none, `identity`, `gzip` (or `x-gzip`) or `zstd`. Anything
    /// else, or two codings stacked, is refused with `415` naming what driftd takes.
    pub fn of(headers: &HeaderMap) -> Result<Encoding, ApiError> {
        let mut found = Encoding::Identity;
        for value in headers.get_all(header::CONTENT_ENCODING) {
            let text = value.to_str().map_err(|_| refused("a non-ASCII value"))?;
            for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                let coding = match coding.to_ascii_lowercase().as_str() {
                    "identity" => continue,
                    "gzip" | "x-gzip" => Encoding::Gzip,
                    "zstd" => Encoding::Zstd,
                    _ => return Err(refused(&format!("{coding:?}"))),
                };
                if found != Encoding::Identity {
                    return Err(refused(&format!("{text:?} (more than one coding)")));
                }
                found = coding;
            }
        }
        Ok(found)
    }
}

fn refused(what: &str) -> ApiError {
    ApiError::UnsupportedMediaType(format!(
        "Content-Encoding {what} is not supported; send the body uncompressed or as {ACCEPTED}"
    ))
}

/// Reads `body`, decoding it, to at most `limit` bytes. `grown` is told of every increase of
/// what is held in memory (decoded bytes, or the body's own when it is plain), so that the
/// caller can hold the queue's byte budget for what actually arrived.
pub async fn read(
    mut body: Body,
    encoding: Encoding,
    limit: usize,
    mut grown: impl FnMut(usize) -> Result<(), ApiError>,
) -> Result<Bytes, ApiError> {
    let mut decoder = Decoder::new(encoding, limit)?;
    let mut wire = 0usize;
    let mut held = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| super::body_error(&e, limit))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        wire += chunk.len();
        if wire > limit {
            return Err(ApiError::TooLarge(limit));
        }
        decoder.write(&chunk)?;
        let now = decoder.sink().bytes.len();
        grown(now - held)?;
        held = now;
    }
    // Finishing flushes what the decoder still buffered.
    let bytes = decoder.finish()?;
    grown(bytes.len() - held)?;
    Ok(Bytes::from(bytes))
}

/// Where decoded bytes go: a buffer that refuses to grow past the limit.
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.over = true;
            return Err(io::Error::other("decoded body over the limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A push decoder: compressed chunks in, decoded bytes into a [`Capped`] buffer.
enum Decoder {
    Identity(Capped),
    // Multi-member: concatenated gzip members are one valid body (RFC 1952).
    Gzip(Box<flate2::write::MultiGzDecoder<Capped>>),
    Zstd(zstd::stream::write::Decoder<'static, Capped>),
}

impl Decoder {
    fn new(encoding: Encoding, limit: usize) -> Result<Decoder, ApiError> {
        let sink = Capped {
            bytes: Vec::new(),
            limit,
            over: false,
        };
        match encoding {
            Encoding::Gzip => Ok(Decoder::Gzip(Box::new(flate2::write::MultiGzDecoder::new(
                sink,
            )))),
            Encoding::Zstd => {
                let mut decoder = zstd::stream::write::Decoder::new(sink)
                    .map_err(|e| ApiError::Internal(format!("zstd decoder: {e}")))?;
                decoder
                    .window_log_max(ZSTD_WINDOW_LOG_MAX)
                    .map_err(|e| ApiError::Internal(format!("zstd decoder: {e}")))?;
                Ok(Decoder::Zstd(decoder))
            }
            Encoding::Identity => Ok(Decoder::Identity(sink)),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Decoder::Identity(_) => "identity",
            Decoder::Gzip(_) => "gzip",
            Decoder::Zstd(_) => "zstd",
        }
    }

    fn sink(&self) -> &Capped {
        match self {
            Decoder::Identity(sink) => sink,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Zstd(d) => d.get_ref(),
        }
    }

    /// The refusal for a decoder error: `413` when the sink is full, else `400`.
    fn failed(&self, e: &io::Error) -> ApiError {
        if self.sink().over {
            ApiError::TooLarge(self.sink().limit)
        } else {
            ApiError::BadRequest(format!(
                "the body is not valid {} (Content-Encoding): {e}",
                self.name()
            ))
        }
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        let written = match self {
            Decoder::Identity(sink) => sink.write_all(chunk),
            Decoder::Gzip(d) => d.write_all(chunk),
            Decoder::Zstd(d) => d.write_all(chunk),
        };
        written.map_err(|e| self.failed(&e))
    }

    /// The decoded bytes, once the input ended where a stream may end.
    fn finish(self) -> Result<Vec<u8>, ApiError> {
        let name = self.name();
        let truncated =
            |e: io::Error| ApiError::BadRequest(format!("the body is not valid {name}: {e}"));
        let sink = match self {
            Decoder::Identity(sink) => sink,
            Decoder::Gzip(mut d) => match d.try_finish() {
                Err(_) if d.get_ref().over => return Err(ApiError::TooLarge(d.get_ref().limit)),
                Err(e) => return Err(truncated(e)),
                Ok(()) => d.finish().map_err(truncated)?,
            },
            Decoder::Zstd(mut d) => match d.do_finish() {
                Err(_) if d.get_ref().over => return Err(ApiError::TooLarge(d.get_ref().limit)),
                Err(e) => return Err(truncated(e)),
                Ok(()) => d.into_inner(),
            },
        };
        Ok(sink.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::CONTENT_ENCODING, v.parse().unwrap());
        }
        h
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    async fn decode(encoding: Encoding, wire: Vec<u8>, limit: usize) -> Result<Bytes, ApiError> {
        let mut held = 0;
        let bytes = read(Body::from(wire), encoding, limit, |n| {
            held += n;
            Ok(())
        })
        .await?;
        assert_eq!(held, bytes.len(), "every byte kept is announced once");
        Ok(bytes)
    }

    #[test]
    fn codings_are_named_and_refused_precisely() {
        assert_eq!(Encoding::of(&headers(&[])).unwrap(), Encoding::Identity);
        assert_eq!(
            Encoding::of(&headers(&["identity"])).unwrap(),
            Encoding::Identity
        );
        assert_eq!(Encoding::of(&headers(&["GZip"])).unwrap(), Encoding::Gzip);
        assert_eq!(Encoding::of(&headers(&["x-gzip"])).unwrap(), Encoding::Gzip);
        assert_eq!(
            Encoding::of(&headers(&["identity, zstd"])).unwrap(),
            Encoding::Zstd
        );
        let e = Encoding::of(&headers(&["br"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Content-Encoding \"br\" is not supported; send the body uncompressed or as gzip or zstd"
        );
        let e = Encoding::of(&headers(&["gzip", "zstd"])).unwrap_err();
        assert!(e.to_string().contains("more than one coding"), "{e}");
    }

    #[tokio::test]
    async fn gzip_and_zstd_decode_within_the_limit() {
        let text = b"{\"records\": [{\"a\": 1}]}".repeat(100);
        let got = decode(Encoding::Gzip, gzip(&text), text.len())
            .await
            .unwrap();
        assert_eq!(got.as_ref(), text.as_slice());
        // Two gzip members are one body.
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(
            decode(Encoding::Gzip, two, 100).await.unwrap().as_ref(),
            b"abcd"
        );
        let z = zstd::encode_all(text.as_slice(), 3).unwrap();
        let got = decode(Encoding::Zstd, z, text.len()).await.unwrap();
        assert_eq!(got.as_ref(), text.as_slice());
    }

    #[tokio::test]
    async fn the_limit_applies_to_decoded_bytes() {
        let zeros = vec![0u8; 1 << 20];
        let e = decode(Encoding::Gzip, gzip(&zeros), 4096)
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::TooLarge(4096)), "{e:?}");
        let z = zstd::encode_all(zeros.as_slice(), 3).unwrap();
        let e = decode(Encoding::Zstd, z, 4096).await.unwrap_err();
        assert!(matches!(e, ApiError::TooLarge(4096)), "{e:?}");
        let e = decode(Encoding::Identity, vec![b' '; 4097], 4096)
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::TooLarge(4096)), "{e:?}");
        assert_eq!(
            decode(Encoding::Identity, b"ab".to_vec(), 4096)
                .await
                .unwrap()
                .as_ref(),
            b"ab"
        );
        // Exactly at the limit is accepted.
        let got = decode(Encoding::Gzip, gzip(&zeros[..4096]), 4096)
            .await
            .unwrap();
        assert_eq!(got.len(), 4096);
    }

    #[tokio::test]
    async fn corrupt_and_truncated_bodies_are_bad_requests() {
        let e = decode(Encoding::Gzip, b"x".to_vec(), 100)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest(m) if m.starts_with("the body is not valid gzip")),
            "{e:?}"
        );
        let mut cut = gzip(b"hello world, hello world");
        cut.truncate(cut.len() - 6);
        let e = decode(Encoding::Gzip, cut, 100).await.unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest(_)), "{e:?}");
        let mut z = zstd::encode_all(&b"hello world"[..], 3).unwrap();
        z.truncate(z.len() - 3);
        let e = decode(Encoding::Zstd, z, 100).await.unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest(m) if m.starts_with("the body is not valid zstd")),
            "{e:?}"
        );
    }
}
