//! The seeds' wine-quality model, served: JSON features in, class and
//! probability out.
//!
//! The model is the one `examples/wine_mlp` trains and saves with `--save`
//! (11 → 10 → 8 → 1, ReLU, ReLU, sigmoid; features standardised with the
//! training rows' mean and scale; class 1 means quality ≥ 6). Three routes
//! show three ways to serve it:
//!
//! * `/predict` — the `WineModel` deployment (two replicas) answers itself;
//! * `/composed` — a `Preprocessor` deployment checks and standardises the
//!   features, then calls `WineModel.predict` through a deployment handle
//!   (Ray Serve's model composition);
//! * `/batched` — `WineBatch` takes up to 16 requests per call, gathered
//!   for at most 2 ms (Ray Serve's `@serve.batch`), and runs them as one
//!   matrix.
//!
//! ```text
//! mkdir -p /tmp/models
//! wray run --dir examples/data::/data --dir /tmp/models::/models wine_mlp.wasm -- --save /models/wine.json
//! wray serve run --dir /tmp/models::/models serve_wine.wasm -- --model /models/wine.json
//! curl -d '{"features": [7.4, 0.7, 0, 1.9, 0.076, 11, 34, 0.9978, 3.51, 0.56, 9.4]}' http://127.0.0.1:8000/predict
//!   {"class":0,"label":"quality < 6","probability":0.0687...}
//! ```
//!
//! Features come as `{"features": [11 numbers]}` in the CSV's column
//! order, or as an object naming each column (`{"alcohol": 9.4, ...}`).
//! Anything else gets a 400 that says what is wrong.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use wray::serve::{self, DeploymentHandle, Request, Response};

/// The model as `wine_mlp --save` writes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedModel {
    pub features: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// `(inputs, outputs, weight, bias)` per linear layer.
    pub layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>,
}

/// What the model says about one wine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Prediction {
    /// 1: quality ≥ 6.
    pub class: u32,
    pub label: String,
    /// The model's probability of that class (of `class`, not always of
    /// class 1).
    pub probability: f32,
}

impl SavedModel {
    fn load(path: &str) -> Result<SavedModel, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the model {path}: {e} (grant its directory with --dir)"))?;
        let m: SavedModel =
            serde_json::from_str(&text).map_err(|e| format!("{path} is not a saved wine model: {e}"))?;
        let n = m.features.len();
        let mut inputs = n;
        for (i, (fan_in, fan_out, w, b)) in m.layers.iter().enumerate() {
            if *fan_in != inputs || w.len() != fan_in * fan_out || b.len() != *fan_out {
                return Err(format!("{path}: layer {i} has inconsistent shapes"));
            }
            inputs = *fan_out;
        }
        if m.mean.len() != n || m.scale.len() != n || inputs != 1 {
            return Err(format!("{path}: the scaler or the output layer does not fit {n} features"));
        }
        Ok(m)
    }

    /// The features of one request body, in column order, unscaled.
    fn features(&self, body: &serde_json::Value) -> Result<Vec<f32>, String> {
        let n = self.features.len();
        let number = |v: &serde_json::Value, what: &str| {
            v.as_f64().map(|x| x as f32).ok_or_else(|| format!("{what} must be a number, got {v}"))
        };
        match body.get("features") {
            Some(serde_json::Value::Array(xs)) if xs.len() == n => {
                xs.iter().enumerate().map(|(i, v)| number(v, &format!("features[{i}]"))).collect()
            }
            Some(other) => Err(format!("\"features\" must be an array of {n} numbers, got {other}")),
            None => self
                .features
                .iter()
                .map(|name| match body.get(name) {
                    Some(v) => number(v, name),
                    None => Err(format!("give \"features\": [{n} numbers] or every column; {name:?} is missing")),
                })
                .collect(),
        }
    }

    fn standardize(&self, x: &mut [f32]) {
        for (i, v) in x.iter_mut().enumerate() {
            *v = (*v - self.mean[i]) / self.scale[i];
        }
    }

    /// The forward pass on standardised rows (`rows × features`,
    /// row-major): dense layers, ReLU between, sigmoid at the end.
    fn forward(&self, rows: usize, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        let last = self.layers.len() - 1;
        for (l, (fan_in, fan_out, w, b)) in self.layers.iter().enumerate() {
            let mut out = vec![0f32; rows * fan_out];
            for r in 0..rows {
                let row = &h[r * fan_in..(r + 1) * fan_in];
                let o = &mut out[r * fan_out..(r + 1) * fan_out];
                o.copy_from_slice(b);
                for (i, xi) in row.iter().enumerate() {
                    for (j, oj) in o.iter_mut().enumerate() {
                        *oj += xi * w[i * fan_out + j];
                    }
                }
                for v in o.iter_mut() {
                    *v = if l == last { 1.0 / (1.0 + (-*v).exp()) } else { v.max(0.0) };
                }
            }
            h = out;
        }
        h
    }
}

fn prediction(p: f32) -> Prediction {
    let class = u32::from(p >= 0.5);
    let label = if class == 1 { "quality >= 6" } else { "quality < 6" }.to_string();
    Prediction { class, label, probability: if class == 1 { p } else { 1.0 - p } }
}

fn bad_request(message: String) -> Response {
    Response::json(&serde_json::json!({ "error": message })).with_status(400)
}

trait WithStatus {
    fn with_status(self, status: u16) -> Self;
}

impl WithStatus for Response {
    fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }
}

/// The model behind `/predict`, and what `Preprocessor` calls.
pub struct WineModel {
    model: SavedModel,
}

#[wray::actor]
impl WineModel {
    pub fn new(path: String) -> Result<WineModel, String> {
        Ok(WineModel { model: SavedModel::load(&path)? })
    }

    /// HTTP: JSON features in, the prediction out.
    pub fn call(&mut self, req: Request) -> Response {
        let body: serde_json::Value = match req.json() {
            Ok(v) => v,
            Err(r) => return r,
        };
        match self.model.features(&body) {
            Ok(mut x) => {
                self.model.standardize(&mut x);
                Response::json(&prediction(self.model.forward(1, &x)[0]))
            }
            Err(e) => bad_request(e),
        }
    }

    /// Through a handle: standardised features in.
    pub fn predict(&mut self, x: Vec<f32>) -> Prediction {
        prediction(self.model.forward(1, &x)[0])
    }
}

/// Checks and standardises the features, then asks the model deployment.
pub struct Preprocessor {
    model: SavedModel,
    predictor: DeploymentHandle<WineModel>,
}

#[wray::actor]
impl Preprocessor {
    pub fn new(path: String, predictor: DeploymentHandle<WineModel>) -> Result<Preprocessor, String> {
        Ok(Preprocessor { model: SavedModel::load(&path)?, predictor })
    }

    pub fn call(&mut self, req: Request) -> Response {
        let body: serde_json::Value = match req.json() {
            Ok(v) => v,
            Err(r) => return r,
        };
        let mut x = match self.model.features(&body) {
            Ok(x) => x,
            Err(e) => return bad_request(e),
        };
        self.model.standardize(&mut x);
        match wray::get(&self.predictor.predict(x)) {
            Ok(p) => Response::json(&p),
            Err(e) => Response::text(502, format!("the model deployment failed: {e}")),
        }
    }
}

/// `/batched`: many requests per call, one matrix through the model.
pub struct WineBatch {
    model: SavedModel,
}

#[wray::actor]
impl WineBatch {
    pub fn new(path: String) -> Result<WineBatch, String> {
        Ok(WineBatch { model: SavedModel::load(&path)? })
    }

    pub fn call(&mut self, requests: Vec<Request>) -> Vec<Response> {
        let n = self.model.features.len();
        let mut rows = Vec::new();
        let mut errors: Vec<Option<Response>> = Vec::with_capacity(requests.len());
        for req in &requests {
            let parsed = req.json::<serde_json::Value>().and_then(|b| self.model.features(&b).map_err(bad_request));
            match parsed {
                Ok(mut x) => {
                    self.model.standardize(&mut x);
                    rows.extend_from_slice(&x);
                    errors.push(None);
                }
                Err(r) => errors.push(Some(r)),
            }
        }
        let mut p = self.model.forward(rows.len() / n.max(1), &rows).into_iter();
        let size = requests.len();
        errors
            .into_iter()
            .map(|e| {
                e.unwrap_or_else(|| {
                    let mut r = Response::json(&prediction(p.next().unwrap_or(0.0)));
                    r.headers.push(("x-batch-size".into(), size.to_string()));
                    r
                })
            })
            .collect()
    }
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a value")),
    }
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let path: String = flag(&args, "--model", "/models/wine.json".to_string())?;
    let replicas: u32 = flag(&args, "--replicas", 2)?;
    let model = serve::deployment::<WineModel>().num_replicas(replicas).route_prefix("/predict").bind((path.clone(),));
    let pre = serve::deployment::<Preprocessor>().route_prefix("/composed").bind((path.clone(), model.handle()));
    let batched = serve::deployment::<WineBatch>()
        .route_prefix("/batched")
        .max_ongoing_requests(2)
        .batch(16, Duration::from_millis(2))
        .bind((path,));
    serve::run("wine", model.with(pre).with(batched)).map_err(|e| e.to_string())
}
