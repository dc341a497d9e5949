//! The GPU path: one wgpu device per adapter, a compute pipeline per kernel
//! (compiled on first use), and a dispatch per operation.
//!
//! Operations are submitted without waiting; wgpu orders them on the queue,
//! so only reading a tensor back waits, and then at most
//! [`KERNEL_TIMEOUT`]. A device that is lost (or fails a wait) is marked lost:
//! every later operation on it fails with an error saying so, and
//! [`crate::Devices`] stops handing it out (new tensors use the CPU path).

use crate::ops::{AdamParams, Binary, Reduce, SgdParams, Unary, broadcast_strides, padded, split_at_axis};
use crate::tensor::TensorError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wgpu::util::DeviceExt;

/// How long reading a tensor back waits for the kernels before it gives up
/// with an error (a hung GPU must not hang a task forever).
pub const KERNEL_TIMEOUT: Duration = Duration::from_secs(60);

/// Invocations per workgroup of the element-wise kernels (their
/// `@workgroup_size`).
const WORKGROUP: u32 = 256;

/// Workgroups per dispatch dimension wgpu guarantees.
const MAX_GROUPS: u32 = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Unary,
    Binary,
    Matmul,
    Reduce,
    Softmax,
    CrossEntropy,
    Gather,
    Sgd,
    Adam,
}

const KERNELS: usize = 9;

impl Kernel {
    /// The shader's WGSL, after the shared prelude.
    fn source(self) -> String {
        let body = match self {
            Kernel::Unary => include_str!("shaders/unary.wgsl"),
            Kernel::Binary => include_str!("shaders/binary.wgsl"),
            Kernel::Matmul => include_str!("shaders/matmul.wgsl"),
            Kernel::Reduce => include_str!("shaders/reduce.wgsl"),
            Kernel::Softmax => include_str!("shaders/softmax.wgsl"),
            Kernel::CrossEntropy => include_str!("shaders/cross_entropy.wgsl"),
            Kernel::Gather => include_str!("shaders/gather.wgsl"),
            Kernel::Sgd => include_str!("shaders/sgd.wgsl"),
            Kernel::Adam => include_str!("shaders/adam.wgsl"),
        };
        format!("{}\n{body}", include_str!("shaders/prelude.wgsl"))
    }
}

/// One GPU: its wgpu device and queue, and whether it still works.
pub struct GpuDevice {
    index: usize,
    name: String,
    software: bool,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: [OnceLock<wgpu::ComputePipeline>; KERNELS],
    lost: Arc<AtomicBool>,
    /// Dispatches recorded but not yet submitted (see [`GpuDevice::run`]).
    pending: Mutex<Pending>,
    /// Why the device was lost, or the last error wgpu reported outside a
    /// dispatch (taken by the next operation).
    reason: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuDevice({}: {})", self.index, self.name)
    }
}

/// Commands recorded since the last submission.
#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    dispatches: usize,
}

/// Dispatches recorded into one command buffer before it is submitted:
/// a submission costs far more than a dispatch (milliseconds on lavapipe),
/// and nothing needs the results before a tensor is read back, which
/// submits at once.
const DISPATCHES_PER_SUBMIT: usize = 64;

/// A tensor's storage on a GPU.
#[derive(Debug)]
pub(crate) struct GpuBuffer {
    buffer: wgpu::Buffer,
    device: Arc<GpuDevice>,
    len: usize,
}

impl GpuBuffer {
    pub(crate) fn device(&self) -> &Arc<GpuDevice> {
        &self.device
    }

    /// Copies the elements out, waiting for the kernels that write them.
    pub(crate) fn download(&self, op: &'static str) -> Result<Vec<f32>, TensorError> {
        self.device.download(op, &self.buffer, self.len)
    }
}

impl GpuDevice {
    pub(crate) fn open(index: usize, adapter: &wgpu::Adapter) -> Result<GpuDevice, String> {
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wray"),
            required_features: wgpu::Features::empty(),
            required_limits: wgpu::Limits::default(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| format!("{} ({:?}): {e}", info.name, info.backend))?;
        let lost = Arc::new(AtomicBool::new(false));
        let reason = Arc::new(Mutex::new(None));
        {
            let (lost, reason) = (lost.clone(), reason.clone());
            device.set_device_lost_callback(move |why, message| {
                lost.store(true, Ordering::SeqCst);
                *reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{why:?}: {message}"));
            });
        }
        {
            // wgpu's default handler panics; errors are reported to the
            // operation that notices them instead.
            let reason = reason.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                // The first error is the cause; later ones tend to be its
                // consequences (an invalid pipeline, then its bind groups).
                reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e.to_string());
            }));
        }
        Ok(GpuDevice {
            index,
            name: info.name.clone(),
            software: info.device_type == wgpu::DeviceType::Cpu,
            device,
            queue,
            pipelines: Default::default(),
            pending: Mutex::new(Pending::default()),
            lost,
            reason,
        })
    }

    /// The device's number on its node.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The adapter's name, as the driver reports it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the adapter is a software rasteriser (Mesa's lavapipe).
    pub fn is_software(&self) -> bool {
        self.software
    }

    /// Whether the device was lost (it then serves no tensors).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Destroys the device as a driver reset would: running and later
    /// kernels on it fail. For tests of device loss.
    pub fn simulate_loss(&self) {
        self.device.destroy();
        self.mark_lost("destroyed (simulated device loss)".into());
    }

    fn mark_lost(&self, why: String) {
        self.lost.store(true, Ordering::SeqCst);
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        r.get_or_insert(why);
    }

    fn check(&self, op: &'static str) -> Result<(), TensorError> {
        if self.is_lost() {
            let why = self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
            return Err(TensorError::new(
                op,
                format!(
                    "GPU {} ({}) was lost ({why}); its tensors are gone, new ones use the CPU path",
                    self.index, self.name
                ),
            ));
        }
        Ok(())
    }

    /// Reports an error wgpu raised since the last check.
    fn take_error(&self, op: &'static str) -> Result<(), TensorError> {
        self.check(op)?;
        match self.reason.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(TensorError::new(op, format!("GPU {} rejected the operation: {e}", self.index))),
            None => Ok(()),
        }
    }

    fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        self.pipelines[kernel as usize].get_or_init(|| {
            let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("wray kernel"),
                source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
            });
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("wray kernel"),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        })
    }

    fn storage(&self, bytes: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            // Zero-sized buffers cannot be bound.
            size: bytes.max(4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    fn init(&self, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let padding = [0u8; 4];
        let contents = if contents.is_empty() { &padding[..] } else { contents };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents, usage })
    }

    pub(crate) fn upload(self: &Arc<Self>, data: &[f32]) -> Result<GpuBuffer, TensorError> {
        self.check("upload")?;
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let buffer = self.init(bytemuck::cast_slice(data), usage);
        self.take_error("upload")?;
        Ok(GpuBuffer { buffer, device: self.clone(), len: data.len() })
    }

    /// Replaces `target`'s elements with `data` (as many), by a copy
    /// recorded in the pending encoder: `queue.write_buffer` would land
    /// before kernels recorded earlier but not yet submitted.
    pub(crate) fn overwrite(&self, target: &GpuBuffer, data: &[f32]) -> Result<(), TensorError> {
        self.check("write")?;
        if data.is_empty() {
            return Ok(());
        }
        let source = self.init(bytemuck::cast_slice(data), wgpu::BufferUsages::COPY_SRC);
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let encoder =
                pending.encoder.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
            encoder.copy_buffer_to_buffer(&source, 0, &target.buffer, 0, (data.len() * 4) as u64);
        }
        self.take_error("write")
    }

    fn download(&self, op: &'static str, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, TensorError> {
        self.check(op)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (len * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut encoder =
                pending.encoder.take().unwrap_or_else(|| self.device.create_command_encoder(&Default::default()));
            pending.dispatches = 0;
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
            self.queue.submit([encoder.finish()]);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        match self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: Some(KERNEL_TIMEOUT) }) {
            Ok(_) => {}
            // Not declared lost: a long kernel (a huge GEMM on a software
            // adapter) looks the same as a hang, and one guest must not be
            // able to take the GPU away from the node's other tasks.
            Err(wgpu::PollError::Timeout) => {
                return Err(TensorError::new(
                    op,
                    format!("GPU {} did not finish the tensor's kernels within {KERNEL_TIMEOUT:?}", self.index),
                ));
            }
            Err(e) => {
                self.mark_lost(format!("waiting for kernels failed: {e}"));
                return Err(self.check(op).err().unwrap_or_else(|| TensorError::new(op, e.to_string())));
            }
        }
        // Another thread's poll may be the one that runs the callback.
        match rx.recv_timeout(KERNEL_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.take_error(op)?;
                return Err(TensorError::new(op, format!("cannot read the tensor back from GPU {}: {e}", self.index)));
            }
            Err(_) => {
                return Err(TensorError::new(op, format!("GPU {} never completed the read", self.index)));
            }
        }
        let out = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| TensorError::new(op, format!("cannot map the read buffer: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.take_error(op)?;
        Ok(out)
    }

    /// Runs `kernel` over `buffers` (bound 0.. in order) and `params` (the
    /// uniform, bound last) with `groups` workgroups.
    fn run(
        &self,
        op: &'static str,
        kernel: Kernel,
        buffers: &[&wgpu::Buffer],
        params: &[u32],
        groups: (u32, u32),
    ) -> Result<(), TensorError> {
        self.check(op)?;
        let pipeline = self.pipeline(kernel);
        let uniform = self.init(bytemuck::cast_slice(params), wgpu::BufferUsages::UNIFORM);
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .chain(std::iter::once(&&uniform))
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        if groups.0 > 0 && groups.1 > 0 {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let encoder =
                pending.encoder.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups(groups.0, groups.1, 1);
            }
            pending.dispatches += 1;
            if pending.dispatches >= DISPATCHES_PER_SUBMIT
                && let Some(encoder) = pending.encoder.take()
            {
                pending.dispatches = 0;
                self.queue.submit([encoder.finish()]);
            }
        }
        self.take_error(op)
    }

    /// Workgroups for one invocation per element, folded into two
    /// dimensions (the shaders recompute the flat index).
    fn groups_for(n: usize) -> (u32, u32) {
        let groups = n.div_ceil(WORKGROUP as usize) as u32;
        if groups == 0 {
            return (0, 0);
        }
        let x = groups.min(MAX_GROUPS);
        (x, groups.div_ceil(x))
    }

    fn output(self: &Arc<Self>, len: usize) -> GpuBuffer {
        GpuBuffer { buffer: self.storage(len * 4), device: self.clone(), len }
    }

    pub(crate) fn unary(self: &Arc<Self>, op: Unary, x: &GpuBuffer, n: usize) -> Result<GpuBuffer, TensorError> {
        let out = self.output(n);
        let (code, a, b) = op.code();
        let params = [n as u32, code, a.to_bits(), b.to_bits()];
        self.run("unary", Kernel::Unary, &[&x.buffer, &out.buffer], &params, Self::groups_for(n))?;
        Ok(out)
    }

    pub(crate) fn binary(
        self: &Arc<Self>,
        op: Binary,
        a: &GpuBuffer,
        sa: &[usize],
        b: &GpuBuffer,
        sb: &[usize],
        shape: &[usize],
    ) -> Result<GpuBuffer, TensorError> {
        let n: usize = shape.iter().product();
        let out = self.output(n);
        let mut params = vec![n as u32, op.code(), 0, 0];
        params.extend(padded(shape));
        params.extend(broadcast_strides(sa, shape));
        params.extend(broadcast_strides(sb, shape));
        self.run("binary", Kernel::Binary, &[&a.buffer, &b.buffer, &out.buffer], &params, Self::groups_for(n))?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn matmul(
        self: &Arc<Self>,
        a: &GpuBuffer,
        b: &GpuBuffer,
        m: usize,
        k: usize,
        n: usize,
        ta: bool,
        tb: bool,
    ) -> Result<GpuBuffer, TensorError> {
        let out = self.output(m * n);
        let params = [m as u32, n as u32, k as u32, u32::from(ta), u32::from(tb), 0, 0, 0];
        let groups = ((n as u32).div_ceil(64), (m as u32).div_ceil(64));
        if groups.0 > MAX_GROUPS || groups.1 > MAX_GROUPS {
            return Err(TensorError::new("matmul", format!("a {m}×{n} result exceeds the GPU's dispatch limits")));
        }
        self.run("matmul", Kernel::Matmul, &[&a.buffer, &b.buffer, &out.buffer], &params, groups)?;
        Ok(out)
    }

    pub(crate) fn reduce(
        self: &Arc<Self>,
        op: Reduce,
        x: &GpuBuffer,
        shape: &[usize],
        axis: usize,
    ) -> Result<GpuBuffer, TensorError> {
        let (outer, len, inner) = split_at_axis(shape, axis);
        let out = self.output(outer * inner);
        let params = [outer as u32, len as u32, inner as u32, op.code()];
        self.run("reduce", Kernel::Reduce, &[&x.buffer, &out.buffer], &params, Self::groups_for(outer * inner))?;
        Ok(out)
    }

    pub(crate) fn softmax(self: &Arc<Self>, x: &GpuBuffer, rows: usize, cols: usize) -> Result<GpuBuffer, TensorError> {
        let out = self.output(rows * cols);
        let params = [rows as u32, cols as u32, 0, 0];
        self.run("softmax", Kernel::Softmax, &[&x.buffer, &out.buffer], &params, Self::groups_for(rows))?;
        Ok(out)
    }

    pub(crate) fn cross_entropy(
        self: &Arc<Self>,
        x: &GpuBuffer,
        rows: usize,
        cols: usize,
        targets: &[u32],
    ) -> Result<GpuBuffer, TensorError> {
        let out = self.output(rows);
        let targets = self.init(bytemuck::cast_slice(targets), wgpu::BufferUsages::STORAGE);
        let params = [rows as u32, cols as u32, 0, 0];
        let buffers = [&x.buffer, &targets, &out.buffer];
        self.run("cross-entropy", Kernel::CrossEntropy, &buffers, &params, Self::groups_for(rows))?;
        Ok(out)
    }

    pub(crate) fn gather_rows(
        self: &Arc<Self>,
        x: &GpuBuffer,
        row_len: usize,
        indices: &[u32],
    ) -> Result<GpuBuffer, TensorError> {
        let n = indices.len() * row_len;
        let out = self.output(n);
        let indices = self.init(bytemuck::cast_slice(indices), wgpu::BufferUsages::STORAGE);
        let params = [n as u32, row_len.max(1) as u32, 0, 0];
        self.run("gather-rows", Kernel::Gather, &[&x.buffer, &indices, &out.buffer], &params, Self::groups_for(n))?;
        Ok(out)
    }

    pub(crate) fn sgd_step(
        &self,
        p: &GpuBuffer,
        g: &GpuBuffer,
        v: &GpuBuffer,
        n: usize,
        h: SgdParams,
    ) -> Result<(), TensorError> {
        let params = [n as u32, h.lr.to_bits(), h.momentum.to_bits(), h.weight_decay.to_bits()];
        self.run("sgd-step", Kernel::Sgd, &[&p.buffer, &g.buffer, &v.buffer], &params, Self::groups_for(n))
    }

    pub(crate) fn adam_step(
        &self,
        p: &GpuBuffer,
        g: &GpuBuffer,
        m: &GpuBuffer,
        v: &GpuBuffer,
        n: usize,
        h: AdamParams,
    ) -> Result<(), TensorError> {
        let (bc1, bc2) = crate::cpu::adam_corrections(h);
        let params = [
            n as u32,
            h.lr.to_bits(),
            h.beta1.to_bits(),
            h.beta2.to_bits(),
            h.eps.to_bits(),
            h.weight_decay.to_bits(),
            bc1.to_bits(),
            bc2.to_bits(),
        ];
        let buffers = [&p.buffer, &g.buffer, &m.buffer, &v.buffer];
        self.run("adam-step", Kernel::Adam, &buffers, &params, Self::groups_for(n))
    }
}
