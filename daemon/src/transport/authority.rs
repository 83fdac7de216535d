//! Lets standard gRPC clients reach the Unix socket with their default options.
//!
//! gRPC's C core (grpcio for Python, Ruby, PHP...), grpc-java, older grpc-go and the
//! tools built on them send the socket path as the HTTP/2 `:authority` of a Unix
//! socket call: percent-encoded (`%2Frun%2Ftufkey%2Ftufkeyd.sock`) or raw
//! (`/run/tufkey/tufkeyd.sock`). Neither is an RFC 3986 authority, and `h2`, under
//! hyper and tonic, checks it while it decodes the HEADERS frame, before any code of
//! ours (or a tower layer) sees the request: it resets the stream with
//! `PROTOCOL_ERROR`, so every call fails (hyperium/h2#442, h2 has no option to relax
//! it). On a Unix socket the authority names nothing (the socket path is the peer),
//! so [`Normalized`] rewrites such an `:authority` to `localhost` (what grpc-go
//! sends) on the bytes of the connection, before h2 reads them. Every other frame
//! passes through untouched, and so does every header block of a client that sends
//! a valid authority (tufkey's own client); the TCP listener does not use this at
//! all, so h2's checks there are exactly h2's.
//!
//! HPACK is stateful, so a header block cannot be patched in place: each block the
//! client sends is decoded with a decoder that follows the client's dynamic table
//! (`loona-hpack`). Blocks go to h2 as they came until one carries an authority to
//! normalise; from then on, on that connection, each is re-sent as literals without
//! indexing, which never refer to h2's table, so what the client's indexing put
//! there (and h2 no longer sees) does not matter. What the server advertises is
//! HTTP/2's default for what matters here (a 4096-byte header table, 16 KiB frames),
//! which is what the client encodes against.

use http::uri::Authority;
use loona_hpack::decoder::Decoder;
use loona_hpack::encoder::encode_integer_into;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The stream dependency and weight a HEADERS frame with PRIORITY carries.
const PRIORITY_LEN: usize = 5;
/// The largest frame the server accepts: hyper's default, HTTP/2's minimum.
const MAX_FRAME_SIZE: usize = 16 * 1024;
/// How much is read at once between frames (payloads go straight to h2).
const READ_CHUNK: usize = 8 * 1024;
/// The HPACK table size the server's decoder allows (HTTP/2's default; neither
/// hyper nor tonic is told otherwise), and so the most the client may use.
const HEADER_TABLE_SIZE: usize = 4096;
/// The most a header block may take, encoded or decoded (HPACK size: name + value +
/// 32 per field). The server advertises 16 KiB; this leaves h2 to refuse what is
/// between, and bounds what a connection makes the daemon buffer.
const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// What an `:authority` that is not one becomes.
const LOCAL_AUTHORITY: &[u8] = b"localhost";

/// A Unix-socket connection whose requests' `:authority` h2 accepts.
pub struct Normalized<IO> {
    io: IO,
    rewriter: Rewriter,
    /// Bytes read from the client, not yet rewritten.
    input: Vec<u8>,
    /// Rewritten bytes h2 has not read yet, from `output_at` on.
    output: Vec<u8>,
    output_at: usize,
}

impl<IO> Normalized<IO> {
    pub fn new(io: IO) -> Self {
        Normalized {
            io,
            rewriter: Rewriter::default(),
            input: Vec::new(),
            output: Vec::new(),
            output_at: 0,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Normalized<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.output_at < this.output.len() {
                let ready = &this.output[this.output_at..];
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                this.output_at += n;
                return Poll::Ready(Ok(()));
            }
            this.output.clear();
            this.output_at = 0;
            // A frame payload forwarded as it is goes straight into h2's buffer.
            let forwarding = this.rewriter.forwarding();
            if forwarding > 0 && this.input.is_empty() {
                let want = forwarding.min(buf.remaining());
                let mut direct = ReadBuf::new(buf.initialize_unfilled_to(want));
                ready!(Pin::new(&mut this.io).poll_read(cx, &mut direct))?;
                let n = direct.filled().len();
                buf.advance(n);
                this.rewriter.forwarded(n);
                return Poll::Ready(Ok(()));
            }
            let consumed = this
                .rewriter
                .rewrite(&this.input, &mut this.output)
                .inspect_err(|error| {
                    tracing::debug!(%error, "closing a Unix-socket connection: malformed HTTP/2");
                })?;
            this.input.drain(..consumed);
            if !this.output.is_empty() {
                continue;
            }
            let start = this.input.len();
            this.input.resize(start + READ_CHUNK, 0);
            let mut read = ReadBuf::new(&mut this.input[start..]);
            let polled = Pin::new(&mut this.io).poll_read(cx, &mut read);
            let n = read.filled().len();
            this.input.truncate(start + n);
            ready!(polled)?;
            if n == 0 {
                // The client closed; h2 sees the end of the stream either way.
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Normalized<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: Connected> Connected for Normalized<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Where the client's byte stream is.
#[derive(Debug, Default, PartialEq)]
enum Stage {
    /// Before the connection preface.
    #[default]
    Preface,
    /// Between frames, or inside one whose payload is forwarded as it is.
    Frames,
    /// Not HTTP/2: everything goes to h2 unchanged, which refuses it.
    Verbatim,
}

/// A header block being collected from a HEADERS frame and its CONTINUATIONs.
struct Block {
    stream_id: [u8; 4],
    /// END_STREAM and PRIORITY of the HEADERS frame.
    flags: u8,
    priority: Option<[u8; PRIORITY_LEN]>,
    fragment: Vec<u8>,
    /// The frames as the client sent them.
    frames: Vec<u8>,
}

/// Rewrites the client-to-server half of an HTTP/2 connection; pure, so it can be
/// tested without sockets.
struct Rewriter {
    stage: Stage,
    /// Payload bytes of the current frame still to forward unchanged.
    forward: usize,
    block: Option<Block>,
    /// Follows the client's HPACK dynamic table.
    decoder: Decoder<'static>,
    /// Whether header blocks are re-encoded (once one `:authority` needed it).
    reencoding: bool,
}

impl Default for Rewriter {
    fn default() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        Rewriter {
            stage: Stage::default(),
            forward: 0,
            block: None,
            decoder,
            reencoding: false,
        }
    }
}

impl Rewriter {
    /// How many bytes that follow go to h2 unchanged.
    fn forwarding(&self) -> usize {
        match self.stage {
            Stage::Verbatim => usize::MAX,
            Stage::Frames => self.forward,
            Stage::Preface => 0,
        }
    }

    /// Notes that `n` bytes were forwarded unchanged.
    fn forwarded(&mut self, n: usize) {
        if self.stage == Stage::Frames {
            self.forward -= n;
        }
    }

    /// Rewrites what it can of `input` into `output`; returns how much of `input`
    /// it used (the rest is an incomplete frame, kept for more bytes).
    fn rewrite(&mut self, input: &[u8], output: &mut Vec<u8>) -> io::Result<usize> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.stage {
                Stage::Preface => {
                    if rest.len() < PREFACE.len() {
                        if !PREFACE.starts_with(rest) {
                            self.stage = Stage::Verbatim;
                            continue;
                        }
                        return Ok(at);
                    }
                    if &rest[..PREFACE.len()] == PREFACE {
                        output.extend_from_slice(PREFACE);
                        at += PREFACE.len();
                        self.stage = Stage::Frames;
                    } else {
                        self.stage = Stage::Verbatim;
                    }
                }
                Stage::Verbatim => {
                    output.extend_from_slice(rest);
                    return Ok(input.len());
                }
                Stage::Frames if self.forward > 0 => {
                    let n = self.forward.min(rest.len());
                    output.extend_from_slice(&rest[..n]);
                    self.forward -= n;
                    at += n;
                    if self.forward > 0 {
                        return Ok(at);
                    }
                }
                Stage::Frames => {
                    let Some(head) = rest.get(..FRAME_HEADER_LEN) else {
                        return Ok(at);
                    };
                    let length = usize::from(head[0]) << 16
                        | usize::from(head[1]) << 8
                        | usize::from(head[2]);
                    let (kind, flags) = (head[3], head[4]);
                    let stream_id = [head[5], head[6], head[7], head[8]];
                    let in_block = self.block.is_some();
                    if in_block && (kind != CONTINUATION || self.stream_is_other(stream_id)) {
                        return Err(malformed(
                            "a header block was interrupted by another frame (RFC 9113 §6.10)",
                        ));
                    }
                    if kind != HEADERS && !in_block {
                        // Everything else, a stray CONTINUATION included (h2 refuses it).
                        output.extend_from_slice(head);
                        self.forward = length;
                        at += FRAME_HEADER_LEN;
                        continue;
                    }
                    if length > MAX_FRAME_SIZE {
                        // What h2 answers with FRAME_SIZE_ERROR; not buffered here.
                        return Err(malformed(
                            "a header frame larger than the server's maximum frame size",
                        ));
                    }
                    let Some(payload) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + length)
                    else {
                        return Ok(at);
                    };
                    let frame = &rest[..FRAME_HEADER_LEN + length];
                    at += frame.len();
                    if kind == HEADERS {
                        self.block = Some(Self::headers(payload, flags, stream_id)?);
                    } else if let Some(block) = &mut self.block {
                        block.fragment.extend_from_slice(payload);
                    }
                    if let Some(block) = &mut self.block {
                        block.frames.extend_from_slice(frame);
                        if block.frames.len() > MAX_HEADER_BLOCK {
                            return Err(malformed("a header block larger than the server accepts"));
                        }
                    }
                    if flags & END_HEADERS != 0 {
                        if let Some(block) = self.block.take() {
                            self.pass_on(block, output)?;
                        }
                    }
                }
            }
        }
    }

    fn stream_is_other(&self, stream_id: [u8; 4]) -> bool {
        self.block
            .as_ref()
            .is_some_and(|block| block.stream_id != stream_id)
    }

    /// The start of a header block: a HEADERS frame's payload without its padding.
    fn headers(payload: &[u8], flags: u8, stream_id: [u8; 4]) -> io::Result<Block> {
        let truncated = || malformed("a HEADERS frame shorter than its padding and priority");
        let mut payload = payload;
        let mut padding = 0;
        if flags & PADDED != 0 {
            let (&length, rest) = payload.split_first().ok_or_else(truncated)?;
            padding = usize::from(length);
            payload = rest;
        }
        let mut priority = None;
        if flags & PRIORITY != 0 {
            let (fields, rest) = payload
                .split_first_chunk::<PRIORITY_LEN>()
                .ok_or_else(truncated)?;
            priority = Some(*fields);
            payload = rest;
        }
        let end = payload.len().checked_sub(padding).ok_or_else(truncated)?;
        Ok(Block {
            stream_id,
            flags: flags & (END_STREAM | PRIORITY),
            priority,
            fragment: payload[..end].to_vec(),
            frames: Vec::new(),
        })
    }

    /// Decodes a complete header block (following the client's table) and passes
    /// it on: as the client sent it while no `:authority` needed normalising, and
    /// from the first one that did on, re-encoded (see [`Rewriter::reencode`]).
    fn pass_on(&mut self, block: Block, output: &mut Vec<u8>) -> io::Result<()> {
        let mut fields = Vec::new();
        let mut size = 0usize;
        let mut invalid_authority = false;
        self.decoder
            .decode_with_cb(&block.fragment, |name, value| {
                size = size.saturating_add(name.len() + value.len() + 32);
                if &*name == b":authority" && Authority::try_from(&*value).is_err() {
                    invalid_authority = true;
                }
                if size <= MAX_HEADER_BLOCK {
                    fields.push((name.into_owned(), value.into_owned()));
                }
            })
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        if size > MAX_HEADER_BLOCK {
            return Err(malformed("a header list larger than the server accepts"));
        }
        self.reencoding |= invalid_authority;
        if self.reencoding {
            Self::reencode(&block, fields, output)
        } else {
            output.extend_from_slice(&block.frames);
            Ok(())
        }
    }

    /// Writes `fields`, `:authority` normalised, as HEADERS (and CONTINUATION)
    /// frames of literals without indexing: h2's table is not used from then on, so
    /// what the client's indexing added to it no longer matters.
    fn reencode(
        block: &Block,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        output: &mut Vec<u8>,
    ) -> io::Result<()> {
        let mut encoded = Vec::new();
        for (name, mut value) in fields {
            if name == b":authority" && Authority::try_from(value.as_slice()).is_err() {
                value = LOCAL_AUTHORITY.to_vec();
            }
            // A literal without indexing, with a literal name (RFC 7541 §6.2.2).
            encoded.push(0);
            for string in [&name, &value] {
                encode_integer_into(string.len(), 7, 0, &mut encoded)?;
                encoded.extend_from_slice(string);
            }
        }
        let priority = block
            .priority
            .as_ref()
            .map_or(&[][..], |fields| &fields[..]);
        let first = encoded.len().min(MAX_FRAME_SIZE - priority.len());
        let (head, mut rest) = encoded.split_at(first);
        let last = if rest.is_empty() { END_HEADERS } else { 0 };
        write_frame(
            output,
            HEADERS,
            block.flags | last,
            block.stream_id,
            &[priority, head],
        );
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(rest.len().min(MAX_FRAME_SIZE));
            let last = if after.is_empty() { END_HEADERS } else { 0 };
            write_frame(output, CONTINUATION, last, block.stream_id, &[chunk]);
            rest = after;
        }
        Ok(())
    }
}

fn write_frame(output: &mut Vec<u8>, kind: u8, flags: u8, stream_id: [u8; 4], parts: &[&[u8]]) {
    let length = parts.iter().map(|part| part.len()).sum::<usize>();
    // At most MAX_FRAME_SIZE, so it fits the 24-bit length.
    output.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
    output.extend_from_slice(&[kind, flags]);
    output.extend_from_slice(&stream_id);
    for part in parts {
        output.extend_from_slice(part);
    }
}

fn malformed(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loona_hpack::Encoder;

    /// A client's HEADERS frame for `fields`, encoded as a client's HPACK encoder
    /// would (with its dynamic table, so later blocks refer back to earlier ones).
    fn headers_frame(encoder: &mut Encoder<'_>, stream: u8, fields: &[(&str, &str)]) -> Vec<u8> {
        let block = encoder.encode(
            fields
                .iter()
                .map(|(name, value)| (name.as_bytes(), value.as_bytes())),
        );
        let mut frame = Vec::new();
        write_frame(
            &mut frame,
            HEADERS,
            END_HEADERS,
            [0, 0, 0, stream],
            &[&block],
        );
        frame
    }

    fn request(authority: &str) -> Vec<(&'static str, String)> {
        vec![
            (":scheme", "http".into()),
            (":method", "POST".into()),
            (":authority", authority.into()),
            (":path", "/grpc.health.v1.Health/Check".into()),
            ("te", "trailers".into()),
            ("content-type", "application/grpc".into()),
        ]
    }

    /// Feeds `bytes` through a rewriter in chunks of `step`, as reads would.
    fn rewrite_in_steps(rewriter: &mut Rewriter, bytes: &[u8], step: usize) -> Vec<u8> {
        let mut output = Vec::new();
        let mut input = Vec::new();
        for chunk in bytes.chunks(step) {
            input.extend_from_slice(chunk);
            let used = rewriter.rewrite(&input, &mut output).unwrap();
            input.drain(..used);
        }
        assert!(input.is_empty(), "{} bytes left over", input.len());
        output
    }

    type Fields = Vec<(String, String)>;

    /// Splits the server's view into frames and decodes every header block as h2
    /// would, with one decoder for the connection.
    fn server_view(bytes: &[u8]) -> (Vec<Fields>, Vec<(u8, Vec<u8>)>) {
        assert!(bytes.starts_with(PREFACE));
        let mut rest = &bytes[PREFACE.len()..];
        let mut decoder = Decoder::new();
        let (mut blocks, mut other) = (Vec::new(), Vec::new());
        let mut block = Vec::new();
        while !rest.is_empty() {
            let length =
                usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
            let (kind, flags) = (rest[3], rest[4]);
            let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + length];
            assert!(length <= MAX_FRAME_SIZE);
            match kind {
                HEADERS | CONTINUATION => {
                    let skip = if flags & PRIORITY != 0 && kind == HEADERS {
                        5
                    } else {
                        0
                    };
                    block.extend_from_slice(&payload[skip..]);
                    if flags & END_HEADERS != 0 {
                        let fields = decoder.decode(&block).unwrap();
                        blocks.push(
                            fields
                                .into_iter()
                                .map(|(n, v)| {
                                    (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap())
                                })
                                .collect(),
                        );
                        block.clear();
                    }
                }
                _ => other.push((kind, payload.to_vec())),
            }
            rest = &rest[FRAME_HEADER_LEN + length..];
        }
        (blocks, other)
    }

    fn authority_of(fields: &[(String, String)]) -> &str {
        &fields
            .iter()
            .find(|(name, _)| name == ":authority")
            .unwrap()
            .1
    }

    #[test]
    fn a_socket_path_authority_becomes_localhost_on_every_request_of_a_connection() {
        let mut encoder = Encoder::new();
        let mut client = PREFACE.to_vec();
        // SETTINGS, empty: passes through.
        write_frame(&mut client, 0x4, 0, [0; 4], &[]);
        for (stream, authority) in [
            (1, "tmp%2Fs%2Ftufkeyd.sock"),
            (3, "tmp%2Fs%2Ftufkeyd.sock"),
            (5, "/run/tufkeyd.sock"),
        ] {
            let fields = request(authority);
            let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
            client.extend(headers_frame(&mut encoder, stream, &fields));
            // A DATA frame with END_STREAM.
            write_frame(
                &mut client,
                0x0,
                END_STREAM,
                [0, 0, 0, stream],
                &[&[0, 0, 0, 0, 0]],
            );
        }
        for step in [1, 7, 4096] {
            let (blocks, other) =
                server_view(&rewrite_in_steps(&mut Rewriter::default(), &client, step));
            assert_eq!(blocks.len(), 3);
            for fields in &blocks {
                assert_eq!(authority_of(fields), "localhost");
                assert_eq!(fields.len(), 6, "every other field is kept: {fields:?}");
                assert_eq!(
                    fields[3],
                    (":path".into(), "/grpc.health.v1.Health/Check".into())
                );
            }
            assert_eq!(
                other.len(),
                4,
                "SETTINGS and three DATA frames pass through"
            );
            assert_eq!(other[1], (0x0, vec![0, 0, 0, 0, 0]));
        }
    }

    #[test]
    fn a_valid_authority_is_left_alone() {
        let mut encoder = Encoder::new();
        let mut client = PREFACE.to_vec();
        let fields = request("localhost:50051");
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        client.extend(headers_frame(&mut encoder, 1, &fields));
        client.extend(headers_frame(&mut encoder, 3, &fields));
        let server = rewrite_in_steps(&mut Rewriter::default(), &client, 1000);
        assert_eq!(server, client, "passed on byte for byte");
        let (blocks, _) = server_view(&server);
        assert_eq!(authority_of(&blocks[1]), "localhost:50051");
    }

    #[test]
    fn once_an_authority_is_rewritten_later_blocks_do_not_rely_on_the_servers_table() {
        let mut encoder = Encoder::new();
        let mut client = PREFACE.to_vec();
        // Each custom field enters the client's table; later blocks refer to it.
        let first = [(":authority", "localhost"), ("x-trace", "a")];
        let second = [
            (":authority", "%2Frun%2Fs"),
            ("x-other", "b"),
            ("x-trace", "a"),
        ];
        let third = [
            (":authority", "localhost"),
            ("x-other", "b"),
            ("x-trace", "a"),
        ];
        for (stream, fields) in [(1, &first[..]), (3, &second[..]), (5, &third[..])] {
            client.extend(headers_frame(&mut encoder, stream, fields));
        }
        let (blocks, _) = server_view(&rewrite_in_steps(&mut Rewriter::default(), &client, 5));
        let expected = |fields: &[(&str, &str)]| -> Fields {
            fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect()
        };
        assert_eq!(blocks[0], expected(&first));
        assert_eq!(
            blocks[1],
            expected(&[
                (":authority", "localhost"),
                ("x-other", "b"),
                ("x-trace", "a")
            ])
        );
        assert_eq!(blocks[2], expected(&third));
    }

    #[test]
    fn a_large_block_is_split_into_continuations_and_padding_and_priority_are_handled() {
        let mut encoder = Encoder::new();
        let big = "x".repeat(20_000);
        let fields = [(":authority", "%2Fs"), ("x-big", big.as_str())];
        let block = encoder.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let mut client = PREFACE.to_vec();
        // HEADERS with padding and priority, then two CONTINUATIONs.
        let (first, second) = block.split_at(100);
        let priority = [0, 0, 0, 0, 15];
        write_frame(
            &mut client,
            HEADERS,
            PADDED | PRIORITY,
            [0, 0, 0, 1],
            &[&[3], &priority, first, &[0, 0, 0]],
        );
        let (second, third) = second.split_at(MAX_FRAME_SIZE);
        write_frame(&mut client, CONTINUATION, 0, [0, 0, 0, 1], &[second]);
        write_frame(
            &mut client,
            CONTINUATION,
            END_HEADERS,
            [0, 0, 0, 1],
            &[third],
        );
        let server = rewrite_in_steps(&mut Rewriter::default(), &client, 333);
        let (blocks, _) = server_view(&server);
        assert_eq!(authority_of(&blocks[0]), "localhost");
        assert_eq!(blocks[0][1].1.len(), 20_000);
        let first_frame = &server[PREFACE.len()..];
        assert_eq!(
            first_frame[4], PRIORITY,
            "priority kept, padding dropped, more to come"
        );
        assert_eq!(
            &first_frame[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 5],
            &priority
        );
    }

    #[test]
    fn what_is_not_http2_passes_unchanged_for_h2_to_refuse() {
        let bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(rewrite_in_steps(&mut Rewriter::default(), bytes, 3), bytes);
    }

    #[test]
    fn an_endless_header_block_is_refused_not_buffered() {
        let mut client = PREFACE.to_vec();
        write_frame(&mut client, HEADERS, 0, [0, 0, 0, 1], &[&[0x82]]);
        let chunk = vec![0x82; MAX_FRAME_SIZE];
        for _ in 0..5 {
            write_frame(&mut client, CONTINUATION, 0, [0, 0, 0, 1], &[&chunk]);
        }
        let mut rewriter = Rewriter::default();
        let mut output = Vec::new();
        let error = rewriter.rewrite(&client, &mut output).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error.to_string().contains("larger than the server accepts"),
            "{error}"
        );
    }

    #[test]
    fn a_header_frame_over_the_maximum_frame_size_is_refused() {
        let mut client = PREFACE.to_vec();
        let block = vec![0x82; MAX_FRAME_SIZE + 1];
        write_frame(&mut client, HEADERS, END_HEADERS, [0, 0, 0, 1], &[&block]);
        let error = Rewriter::default()
            .rewrite(&client, &mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("maximum frame size"), "{error}");
    }

    #[test]
    fn a_small_block_that_decodes_to_a_huge_list_is_refused() {
        // One large field in the client's table, then a block of many references to it.
        let mut encoder = Encoder::new();
        let large = "v".repeat(4000);
        let mut client = PREFACE.to_vec();
        client.extend(headers_frame(&mut encoder, 1, &[("x-large", &large)]));
        let references = vec![("x-large", large.as_str()); 20];
        client.extend(headers_frame(&mut encoder, 3, &references));
        assert!(client.len() < 5000, "the second block is tiny on the wire");
        let error = Rewriter::default()
            .rewrite(&client, &mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("header list larger"), "{error}");
    }

    #[test]
    fn a_header_block_interrupted_by_another_frame_is_refused() {
        let mut client = PREFACE.to_vec();
        write_frame(&mut client, HEADERS, 0, [0, 0, 0, 1], &[&[0x82]]);
        write_frame(&mut client, 0x0, 0, [0, 0, 0, 1], &[b"data"]);
        let error = Rewriter::default()
            .rewrite(&client, &mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("interrupted"), "{error}");
    }

    #[tokio::test]
    async fn frame_payloads_are_read_through_unchanged() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut client_bytes = PREFACE.to_vec();
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        for chunk in payload.chunks(MAX_FRAME_SIZE) {
            write_frame(&mut client_bytes, 0x0, 0, [0, 0, 0, 1], &[chunk]);
        }
        let (mut client, server) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            client.write_all(&client_bytes).await.unwrap();
            client_bytes
        });
        let mut received = Vec::new();
        Normalized::new(server)
            .read_to_end(&mut received)
            .await
            .unwrap();
        assert_eq!(received, writer.await.unwrap());
    }
}
