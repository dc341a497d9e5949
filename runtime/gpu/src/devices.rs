//! Finding a node's GPUs and handing them to tasks.

use crate::gpu::GpuDevice;
use crate::tensor::Device;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Set to `1` to let software adapters (Mesa's lavapipe, which runs Vulkan on
/// the CPU) count as GPUs. Tests and CI do; on a real machine a software
/// adapter is slower than the CPU path, so it is off by default.
pub const SOFTWARE_GPU_ENV: &str = "WRAY_ALLOW_SOFTWARE_GPU";

/// Which adapters a node may use.
#[derive(Clone, Debug, Default)]
pub struct DeviceConfig {
    /// Count software adapters as GPUs.
    pub allow_software: bool,
    /// Open at most this many adapters (none: all).
    pub max: Option<usize>,
}

impl DeviceConfig {
    /// The configuration [`SOFTWARE_GPU_ENV`] asks for.
    pub fn from_env() -> DeviceConfig {
        let allow_software = std::env::var(SOFTWARE_GPU_ENV).is_ok_and(|v| v == "1" || v == "true");
        DeviceConfig { allow_software, max: None }
    }
}

/// Whether `dev` holds a node through which a Vulkan driver reaches
/// hardware: a DRM render node (Mesa's drivers: AMD, Intel), NVIDIA's
/// devices, or WSL's `dxg`.
fn has_gpu_device_node(dev: &Path) -> bool {
    let named = |dir: &Path, prefix: &str| {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(prefix)))
            .unwrap_or(false)
    };
    named(&dev.join("dri"), "renderD") || named(dev, "nvidia") || dev.join("dxg").exists()
}

/// The GPUs of a node.
#[derive(Debug, Default)]
pub struct Devices {
    gpus: Vec<Arc<GpuDevice>>,
    /// Round-robin cursor: tasks sharing the node's GPUs spread over them.
    next: AtomicUsize,
    notice: Option<String>,
}

impl Devices {
    /// No GPUs: every tensor on the CPU path.
    pub fn cpu_only() -> Devices {
        Devices::default()
    }

    /// Opens the usable adapters (Vulkan). Never fails: with no adapter, no
    /// driver or no permission, the node runs tensors on the CPU path and
    /// [`Devices::notice`] says why.
    pub fn discover(config: &DeviceConfig) -> Devices {
        // Looking loads every installed Vulkan driver, and Mesa's link LLVM
        // (44 MiB of the process's memory for its whole life). A machine
        // without a GPU device node has no hardware GPU to find; only a
        // software adapter could be, and only if allowed.
        if !config.allow_software && !has_gpu_device_node(Path::new("/dev")) {
            return Devices {
                notice: Some(format!(
                    "no usable GPU (no GPU device in /dev; software ones such as lavapipe only with \
                     {SOFTWARE_GPU_ENV}=1): tensors run on the CPU path"
                )),
                ..Devices::default()
            };
        }
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = wgpu::Backends::VULKAN;
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
        let mut gpus = Vec::new();
        let mut skipped = Vec::new();
        for adapter in adapters {
            if config.max.is_some_and(|max| gpus.len() >= max) {
                break;
            }
            let info = adapter.get_info();
            if info.device_type == wgpu::DeviceType::Cpu && !config.allow_software {
                skipped.push(format!("{} (software; set {SOFTWARE_GPU_ENV}=1 to use it)", info.name));
                continue;
            }
            match GpuDevice::open(gpus.len(), &adapter) {
                Ok(d) => gpus.push(Arc::new(d)),
                Err(e) => skipped.push(e),
            }
        }
        let notice = if gpus.is_empty() {
            let why = if skipped.is_empty() { "no Vulkan adapter found".to_string() } else { skipped.join("; ") };
            Some(format!("no usable GPU ({why}): tensors run on the CPU path"))
        } else {
            None
        };
        Devices { gpus, next: AtomicUsize::new(0), notice }
    }

    /// The GPUs opened, lost ones included.
    pub fn gpus(&self) -> &[Arc<GpuDevice>] {
        &self.gpus
    }

    /// GPUs that still work.
    pub fn usable(&self) -> usize {
        self.gpus.iter().filter(|g| !g.is_lost()).count()
    }

    /// Why there is no GPU, if there is none.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// Where the tensors of a task holding `gpus` of the `GPU` resource live:
    /// a working GPU if it holds any (several tasks with fractions share
    /// one), else the CPU path.
    pub fn for_task(&self, gpus: f64) -> Device {
        if gpus <= 0.0 {
            return Device::Cpu;
        }
        let live: Vec<&Arc<GpuDevice>> = self.gpus.iter().filter(|g| !g.is_lost()).collect();
        if live.is_empty() {
            return Device::Cpu;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % live.len();
        Device::Gpu(live[i].clone())
    }
}

#[cfg(test)]
mod device_node_tests {
    use super::has_gpu_device_node;

    #[test]
    fn a_gpu_is_looked_for_only_behind_a_device_node() {
        let dev = std::env::temp_dir().join(format!("wray-dev-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dev);
        std::fs::create_dir_all(dev.join("dri")).unwrap();
        std::fs::write(dev.join("null"), b"").unwrap();
        std::fs::write(dev.join("dri/card0"), b"").unwrap();
        assert!(!has_gpu_device_node(&dev), "a display card without a render node");
        std::fs::write(dev.join("dri/renderD128"), b"").unwrap();
        assert!(has_gpu_device_node(&dev));
        std::fs::remove_file(dev.join("dri/renderD128")).unwrap();
        std::fs::write(dev.join("nvidia0"), b"").unwrap();
        assert!(has_gpu_device_node(&dev));
        std::fs::remove_file(dev.join("nvidia0")).unwrap();
        std::fs::write(dev.join("dxg"), b"").unwrap();
        assert!(has_gpu_device_node(&dev));
        std::fs::remove_dir_all(&dev).unwrap();
    }
}
