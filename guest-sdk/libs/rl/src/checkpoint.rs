//! Algorithm checkpoints: one JSON file (`rl_checkpoint.json`) in a
//! directory — the algorithm, the environment, the config, the counters
//! and the weights — written whole to a temporary file and renamed, so a
//! crash mid-save leaves the previous checkpoint intact.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use wray_guest_core::Error;

/// The checkpoint file's name inside its directory.
pub const CHECKPOINT_FILE: &str = "rl_checkpoint.json";
const FORMAT: &str = "wray-rl";
const VERSION: u32 = 1;
/// Largest checkpoint file read back: a file from elsewhere must not make
/// the job allocate without bound.
pub const MAX_CHECKPOINT_BYTES: u64 = 256 << 20;

#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope<S> {
    format: String,
    version: u32,
    pub(crate) algorithm: String,
    pub(crate) env: String,
    pub(crate) state: S,
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("checkpoint {}: {e}", path.display()))
}

/// Writes `state` as the checkpoint of `algorithm` on `env` into `dir`
/// (created if missing); returns the directory.
pub(crate) fn save<S: Serialize>(dir: &Path, algorithm: &str, env: &str, state: &S) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let envelope =
        Envelope { format: FORMAT.into(), version: VERSION, algorithm: algorithm.into(), env: env.into(), state };
    let bytes = serde_json::to_vec(&envelope).map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, dir.join(CHECKPOINT_FILE)).map_err(|e| io(dir, e))?;
    Ok(dir.to_path_buf())
}

/// The file a checkpoint path names: the file itself or the directory
/// holding it.
fn file_of(path: &Path) -> PathBuf {
    if path.is_dir() { path.join(CHECKPOINT_FILE) } else { path.to_path_buf() }
}

/// The algorithm and environment a checkpoint holds.
pub fn describe(path: &Path) -> Result<(String, String), Error> {
    let envelope: Envelope<serde::de::IgnoredAny> = read(path)?;
    Ok((envelope.algorithm, envelope.env))
}

fn read<S: for<'de> Deserialize<'de>>(path: &Path) -> Result<Envelope<S>, Error> {
    let file = file_of(path);
    let len = std::fs::metadata(&file).map_err(|e| io(&file, e))?.len();
    if len > MAX_CHECKPOINT_BYTES {
        return Err(io(&file, format!("{len} bytes, more than the {MAX_CHECKPOINT_BYTES} a checkpoint may have")));
    }
    let bytes = std::fs::read(&file).map_err(|e| io(&file, e))?;
    let head: Envelope<serde::de::IgnoredAny> =
        serde_json::from_slice(&bytes).map_err(|e| io(&file, format!("not a wray-rl checkpoint: {e}")))?;
    if head.format != FORMAT || head.version != VERSION {
        return Err(io(&file, format!("format {} v{}, expected {FORMAT} v{VERSION}", head.format, head.version)));
    }
    serde_json::from_slice(&bytes).map_err(|e| io(&file, format!("a damaged {} checkpoint: {e}", head.algorithm)))
}

/// Reads a checkpoint of `algorithm`; one of another algorithm or, when
/// `env` is given, of another environment is an error naming both.
pub(crate) fn load<S: for<'de> Deserialize<'de>>(path: &Path, algorithm: &str, env: Option<&str>) -> Result<S, Error> {
    let (found_algo, found_env) = describe(path)?;
    if found_algo != algorithm {
        return Err(io(path, format!("a {found_algo} checkpoint cannot be restored into {algorithm}")));
    }
    if let Some(env) = env
        && env != found_env
    {
        return Err(io(path, format!("trained on {found_env}, not on {env}")));
    }
    Ok(read::<S>(path)?.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_of_another_algorithm_or_environment_or_format_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(&dir.path().join("a"), "PPO", "CartPole-v1", &vec![1.0f32, 2.0]).unwrap();
        let back: Vec<f32> = load(&path, "PPO", Some("CartPole-v1")).unwrap();
        assert_eq!(back, vec![1.0, 2.0]);
        assert_eq!(describe(&path.join(CHECKPOINT_FILE)).unwrap(), ("PPO".to_string(), "CartPole-v1".to_string()));
        let e = load::<Vec<f32>>(&path, "DQN", None).unwrap_err().to_string();
        assert!(e.contains("a PPO checkpoint cannot be restored into DQN"), "{e}");
        let e = load::<Vec<f32>>(&path, "PPO", Some("Acrobot-v1")).unwrap_err().to_string();
        assert!(e.contains("trained on CartPole-v1, not on Acrobot-v1"), "{e}");
        // Damaged, foreign and missing files name the problem.
        let file = path.join(CHECKPOINT_FILE);
        std::fs::write(
            &file,
            b"{\"format\":\"wray-rl\",\"version\":1,\"algorithm\":\"PPO\",\"env\":\"x\",\"state\":[1,",
        )
        .unwrap();
        assert!(load::<Vec<f32>>(&path, "PPO", None).unwrap_err().to_string().contains("not a wray-rl checkpoint"));
        std::fs::write(&file, b"{\"format\":\"other\",\"version\":1,\"algorithm\":\"PPO\",\"env\":\"x\",\"state\":1}")
            .unwrap();
        assert!(load::<Vec<f32>>(&path, "PPO", None).unwrap_err().to_string().contains("format other v1"));
        std::fs::write(
            &file,
            b"{\"format\":\"wray-rl\",\"version\":1,\"algorithm\":\"PPO\",\"env\":\"x\",\"state\":\"no\"}",
        )
        .unwrap();
        assert!(load::<Vec<f32>>(&path, "PPO", None).unwrap_err().to_string().contains("a damaged PPO checkpoint"));
        let e = load::<Vec<f32>>(&dir.path().join("missing"), "PPO", None).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
