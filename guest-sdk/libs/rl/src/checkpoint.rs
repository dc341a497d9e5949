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

/// The config inside an algorithm's checkpoint state (every state starts
/// with it; the rest is skipped).
#[derive(Deserialize)]
pub(crate) struct SavedConfig<C> {
    pub(crate) config: C,
}

/// A checkpoint's bytes: `state` of `algorithm` trained on `env`.
pub(crate) fn encode<S: Serialize>(algorithm: &str, env: &str, state: &S) -> Result<Vec<u8>, Error> {
    let envelope =
        Envelope { format: FORMAT.into(), version: VERSION, algorithm: algorithm.into(), env: env.into(), state };
    serde_json::to_vec(&envelope).map_err(|e| Error::InvalidArgument(format!("encoding a checkpoint: {e}")))
}

/// The algorithm and environment of a checkpoint's bytes (`origin` names
/// where they came from in errors).
pub(crate) fn header(bytes: &[u8], origin: &str) -> Result<(String, String), Error> {
    let bad = |m: String| Error::InvalidArgument(format!("checkpoint {origin}: {m}"));
    let head: Envelope<serde::de::IgnoredAny> =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a wray-rl checkpoint: {e}")))?;
    if head.format != FORMAT || head.version != VERSION {
        return Err(bad(format!("format {} v{}, expected {FORMAT} v{VERSION}", head.format, head.version)));
    }
    Ok((head.algorithm, head.env))
}

/// The state in a checkpoint's bytes, which must be of `algorithm` and,
/// when `env` is given, of that environment.
pub(crate) fn decode<S: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    origin: &str,
    algorithm: &str,
    env: Option<&str>,
) -> Result<S, Error> {
    let bad = |m: String| Error::InvalidArgument(format!("checkpoint {origin}: {m}"));
    let (found_algo, found_env) = header(bytes, origin)?;
    if found_algo != algorithm {
        return Err(bad(format!("a {found_algo} checkpoint cannot be restored into {algorithm}")));
    }
    if let Some(env) = env
        && env != found_env
    {
        return Err(bad(format!("trained on {found_env}, not on {env}")));
    }
    let envelope: Envelope<S> =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("a damaged {found_algo} checkpoint: {e}")))?;
    Ok(envelope.state)
}

/// Writes checkpoint bytes into `dir` (created if missing); returns the
/// directory.
pub(crate) fn write(dir: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
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

/// Reads a checkpoint's bytes (at most [`MAX_CHECKPOINT_BYTES`]).
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    let file = file_of(path);
    let len = std::fs::metadata(&file).map_err(|e| io(&file, e))?.len();
    if len > MAX_CHECKPOINT_BYTES {
        return Err(io(&file, format!("{len} bytes, more than the {MAX_CHECKPOINT_BYTES} a checkpoint may have")));
    }
    std::fs::read(&file).map_err(|e| io(&file, e))
}

/// The algorithm and environment a checkpoint holds.
pub fn describe(path: &Path) -> Result<(String, String), Error> {
    header(&read(path)?, &path.display().to_string())
}

/// Reads a checkpoint of `algorithm` (and of `env`, when given).
#[cfg(test)]
fn load<S: for<'de> Deserialize<'de>>(path: &Path, algorithm: &str, env: Option<&str>) -> Result<S, Error> {
    decode(&read(path)?, &path.display().to_string(), algorithm, env)
}

/// Writes `state` as a checkpoint of `algorithm` on `env` into `dir`.
#[cfg(test)]
fn save<S: Serialize>(dir: &Path, algorithm: &str, env: &str, state: &S) -> Result<PathBuf, Error> {
    write(dir, &encode(algorithm, env, state)?)
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
