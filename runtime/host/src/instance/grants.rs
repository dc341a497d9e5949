//! What a job grants its instances: output, environment, directories —
//! nothing by default — turned into a WASI context per instance.

use std::path::PathBuf;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Which of its two streams a guest wrote to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// Writes `bytes` to this process's own stream of that name (stdout
    /// flushed at once, so that output streams live).
    pub fn write_here(self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        match self {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(bytes),
        }
    }
}

/// Bytes a guest wrote, and to which stream, as output channels carry them:
/// a remote job's standard error stays standard error on the client.
pub type Chunk = (Stream, Vec<u8>);

/// Where an instance's stdout and stderr go.
#[derive(Clone, Debug, Default)]
pub enum Output {
    /// To the host process's own stdout/stderr, as the guest writes (what
    /// `wray run` uses: output streams live).
    #[default]
    Inherit,
    /// Discarded.
    Null,
    /// Into a shared in-memory buffer (for embedders and tests); both streams
    /// go to the same buffer.
    Capture(MemoryOutputPipe),
    /// Sent, chunk by chunk as the guest writes, into a channel (a head node
    /// streams a remote job's output back this way); both streams, each
    /// chunk tagged with its own.
    Channel(tokio::sync::mpsc::UnboundedSender<Chunk>),
    /// Into a channel whose reader prints to a terminal (`wray run` keeping
    /// a progress line below the output): as `Channel`, but the guest is
    /// told its streams are a terminal, as it would be with `Inherit` on
    /// one, so its own live output (Data's progress) stays live.
    Terminal(tokio::sync::mpsc::UnboundedSender<Chunk>),
}

impl Output {
    /// Writes bytes a guest printed to `stream` elsewhere (a task that ran
    /// on another node) where this output goes.
    pub fn write(&self, stream: Stream, bytes: &[u8]) {
        match self {
            Output::Inherit => {
                let _ = stream.write_here(bytes);
            }
            Output::Null => {}
            Output::Capture(pipe) => {
                use wasmtime_wasi::p2::OutputStream;
                // Full: the rest is dropped, as for the guest's own writes.
                let _ = pipe.clone().write(bytes::Bytes::copy_from_slice(bytes));
            }
            Output::Channel(tx) | Output::Terminal(tx) => {
                let _ = tx.send((stream, bytes.to_vec()));
            }
        }
    }
}

/// A stream that tells the guest it is a terminal (see [`Output::Terminal`]).
struct OnTerminal(wasmtime_wasi::cli::AsyncStdoutStream);

impl wasmtime_wasi::cli::IsTerminal for OnTerminal {
    fn is_terminal(&self) -> bool {
        true
    }
}

impl wasmtime_wasi::cli::StdoutStream for OnTerminal {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        self.0.p2_stream()
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        self.0.async_stream()
    }
}

/// Writes into an output channel; never blocks (the channel is unbounded, as
/// the guest's own writes are bounded by its time limit and the peer reads
/// continuously).
struct ChannelWriter(tokio::sync::mpsc::UnboundedSender<Chunk>, Stream);

impl tokio::io::AsyncWrite for ChannelWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        // A closed channel means nobody listens any more: drop the output.
        let _ = self.0.send((self.1, buf.to_vec()));
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Bytes a guest may have in flight to an output channel before its write
/// waits.
const OUTPUT_BUDGET: usize = 64 * 1024;

/// Capabilities a job grants its instances. Nothing by default: no files,
/// no environment, no network.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// Host directories made visible: `(host path, guest path)`.
    pub dirs: Vec<(PathBuf, String)>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Where output goes.
    pub output: Output,
    /// The WASI command line (`argv`, the program's name first) of a
    /// `wasi:cli/command`'s driver ([`crate::JobComponent::is_command`]);
    /// empty for everything else: a wray job's `main` is called with its
    /// arguments instead.
    pub args: Vec<String>,
    /// Whether the instance reads this process's standard input: only a
    /// `wasi:cli/command`'s driver under `wray run` on its embedded runtime
    /// (as under `wasmtime run`); everything else reads an empty stream.
    pub stdin: bool,
}

impl Grants {
    /// These grants with a task's or actor's own environment variables set
    /// over the granted ones (a name in both takes the task's value);
    /// borrowed as they are when it sets none, the usual case.
    pub fn with_env(&self, env: &[(String, String)]) -> std::borrow::Cow<'_, Grants> {
        if env.is_empty() {
            return std::borrow::Cow::Borrowed(self);
        }
        let env = wray_core::Options::env_over(&self.env, env.to_vec());
        std::borrow::Cow::Owned(Grants { env, ..self.clone() })
    }
}

/// An instance's WASI context as `grants` describe it: made when the
/// instance is, if it is granted directories (opening one can fail, and the
/// failure belongs to the instance's creation), else on the guest's first
/// WASI call ([`WasiCtxSlot::get`]).
pub(super) struct WasiCtxSlot {
    ctx: Option<WasiCtx>,
    /// What a late context is made from (no directories).
    grants: Grants,
}

impl WasiCtxSlot {
    pub(super) fn new(grants: &Grants) -> wasmtime::Result<WasiCtxSlot> {
        // Most tasks never call WASI (no clock, no print), and making a
        // context — its stdio streams, clocks and a seeded random generator,
        // then dropping them — was ~4 % of a short task's CPU (`perf`,
        // sync tasks with a fresh instance each). Without directories,
        // making it cannot fail, so it can wait for its first use.
        if grants.dirs.is_empty() {
            return Ok(WasiCtxSlot { ctx: None, grants: grants.clone() });
        }
        let mut b = builder(grants);
        for (host, guest) in &grants.dirs {
            b.preopened_dir(host, guest, FsPerms::ReadWrite)
                .map_err(|e| wasmtime::format_err!("cannot grant directory {}: {e:#}", host.display()))?;
        }
        Ok(WasiCtxSlot { ctx: Some(b.build()), grants: Grants::default() })
    }

    /// The context, made now if this is its first use.
    pub(super) fn get(&mut self) -> &mut WasiCtx {
        self.ctx.get_or_insert_with(|| builder(&self.grants).build())
    }
}

/// A WASI context builder with everything `grants` give but directories.
fn builder(grants: &Grants) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    // File reads and writes run on the instance's own thread instead of
    // being handed to tokio's blocking pool. WASI moves at most 64 KiB per
    // call, and each hand-off (a spawn, a futex wake, a context switch each
    // way) cost more than the page-cache copy it wrapped: 25,000 of them a
    // GiB, a fifth of the CPU of a CSV → Parquet conversion. The thread is
    // the one the guest computes on anyway — a guest already holds it for
    // as long as it runs between epoch yields — so a read from a slow disk
    // delays the guest that asked for it, and others on that thread only as
    // much as that guest's own computing would.
    b.allow_blocking_current_thread(true);
    match &grants.output {
        Output::Inherit => {
            b.inherit_stdout().inherit_stderr();
        }
        Output::Null => {}
        Output::Capture(pipe) => {
            b.stdout(pipe.clone()).stderr(pipe.clone());
        }
        Output::Channel(tx) => {
            use wasmtime_wasi::cli::AsyncStdoutStream;
            b.stdout(AsyncStdoutStream::new(OUTPUT_BUDGET, ChannelWriter(tx.clone(), Stream::Stdout)));
            b.stderr(AsyncStdoutStream::new(OUTPUT_BUDGET, ChannelWriter(tx.clone(), Stream::Stderr)));
        }
        Output::Terminal(tx) => {
            use wasmtime_wasi::cli::AsyncStdoutStream;
            b.stdout(OnTerminal(AsyncStdoutStream::new(OUTPUT_BUDGET, ChannelWriter(tx.clone(), Stream::Stdout))));
            b.stderr(OnTerminal(AsyncStdoutStream::new(OUTPUT_BUDGET, ChannelWriter(tx.clone(), Stream::Stderr))));
        }
    }
    for (k, v) in &grants.env {
        b.env(k, v);
    }
    b.args(&grants.args);
    if grants.stdin {
        b.inherit_stdin();
    }
    b
}
