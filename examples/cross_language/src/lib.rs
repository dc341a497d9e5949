//! Values across languages: a Rust actor that Python jobs call, and a Rust
//! driver that calls a Python job's actor — plain data both ways, in wray's
//! cross-language encoding (`wray::Value`; docs/PYTHON.md, "Values across
//! languages"). Detached actors live on a cluster's head, so run it there
//! with its Python partner, `examples/python/cross_language.py`:
//!
//! ```text
//! wray run --address A --token T cross_language.wasm -- serve          # the Rust actor "inventory"
//! wray run --address A --token T cross_language_py.wasm -- use-rust    # Python calls it
//! wray run --address A --token T cross_language_py.wasm -- serve       # the Python actor "tally"
//! wray run --address A --token T cross_language.wasm -- use-python     # Rust calls it
//! ```

use wray::Value;

/// Plain values under string keys — what a job in any language can store
/// and read back.
#[wray::actor]
#[derive(Default)]
pub struct Inventory {
    items: Vec<(String, Value)>,
}

#[wray::actor]
impl Inventory {
    pub fn new() -> Self {
        Inventory::default()
    }

    /// Stores `value` under `key` (a string); returns the value it replaced,
    /// or None.
    pub fn put(&mut self, key: Value, value: Value) -> Value {
        let Some(key) = key.as_str().map(str::to_string) else {
            return Value::dict([("error", format!("keys are strings, not {}", key.kind()))]);
        };
        match self.items.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => std::mem::replace(old, value),
            None => {
                self.items.push((key, value));
                Value::None
            }
        }
    }

    /// The value under `key`, or None.
    pub fn get(&self, key: Value) -> Value {
        let key = key.as_str().unwrap_or_default();
        self.items.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// What the inventory holds: each key with the kind of its value, in
    /// the order they were first stored.
    pub fn describe(&self) -> Value {
        Value::dict([
            ("count", Value::from(self.items.len() as i64)),
            ("kinds", Value::dict(self.items.iter().map(|(k, v)| (k.as_str(), v.kind())))),
        ])
    }

    /// The sum of numbers: an array, or a list of ints and floats.
    pub fn total(&self, numbers: Value) -> Value {
        match numbers.to_f64s() {
            Some(v) => Value::from(v.iter().sum::<f64>()),
            None => Value::dict([("error", format!("total takes numbers, not a {}", numbers.kind()))]),
        }
    }
}

/// At most how many items `generator` had made past the one its reader
/// asked for, when it asked. The reader begins late — once the generator
/// has ended, or after 2 s — and takes an item every 20 ms; each item is
/// the time it was made, and the time of each ask is taken before it.
fn most_ahead(mut generator: wray::ObjectRefGenerator<Value>) -> Result<usize, wray::Error> {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let _ = wray::wait(std::slice::from_ref(generator.result()), 1, Some(std::time::Duration::from_secs(2)));
    let (mut asked, mut made) = (Vec::new(), Vec::new());
    loop {
        let at = now();
        let Some(item) = generator.next() else { break };
        asked.push(at);
        made.push(wray::get(&item?)?.as_f64().unwrap_or(f64::INFINITY));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(asked
        .iter()
        .enumerate()
        .map(|(k, at)| made.iter().filter(|t| *t < at).count().saturating_sub(k + 1))
        .max()
        .unwrap_or(0))
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), wray::Error> {
    match args.first().map(String::as_str) {
        Some("serve") => {
            // Outlives this job: any later job of the cluster, in any
            // language, finds it by name.
            let inventory = Inventory::options().name("inventory").detached().remote();
            wray::get(&inventory.put(Value::from("created by"), Value::from("rust")))?;
            println!("inventory is up: {}", inventory.actor_id().len() == 32);
        }
        Some("use-python") => {
            // The Python job's actor, found by name and called by method
            // name with plain values; its answers come back as Values.
            let tally = wray::get_actor_dyn("tally")?;
            println!("tally is a {}", tally.class());
            for (word, n) in [("wasm", 3), ("ray", 2), ("wasm", 4)] {
                let total = wray::get(&tally.call("add", [Value::from(word), Value::from(n)])?)?;
                println!("add({word:?}, {n}) -> {}", total.as_i64().unwrap_or(-1));
            }
            let counts = wray::get(&tally.call("counts", [])?)?;
            for (k, v) in counts.as_dict().unwrap_or_default() {
                println!("counts[{}] = {}", k.as_str().unwrap_or("?"), v.as_i64().unwrap_or(-1));
            }
            let summary = wray::get(&tally.call("summary", [Value::from(vec![1.5f64, 2.5])])?)?;
            println!(
                "summary: mean {} of {} values, words {:?}",
                summary.get("mean").and_then(Value::as_f64).unwrap_or(f64::NAN),
                summary.get("n").and_then(Value::as_i64).unwrap_or(-1),
                summary
                    .get("words")
                    .and_then(Value::as_list)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
            );
            // A generator method's items, each a Value, as they are made.
            let each: Vec<String> = tally
                .call_generator("each", [])?
                .map(|item| {
                    let v = wray::get(&item?)?;
                    Ok(format!(
                        "{}={}",
                        v.get("word").and_then(Value::as_str).unwrap_or("?"),
                        v.get("count").and_then(Value::as_i64).unwrap_or(-1)
                    ))
                })
                .collect::<Result<_, wray::Error>>()?;
            println!("each: {}", each.join(" "));
            // With a window of 2 the generator waits for its reader; without
            // one it runs to its end at once.
            let paced = tally.with_generator_backpressure(2).call_generator("stamped", [Value::from(20)])?;
            let unpaced = tally.call_generator("stamped", [Value::from(20)])?;
            println!(
                "made ahead of a slow reader: at most 1 paced {}, 15 or more unpaced {}",
                most_ahead(paced)? <= 1,
                most_ahead(unpaced)? >= 15
            );
            // A Python-only answer cannot cross: the call fails, naming it.
            match wray::get(&tally.call("python_only", [])?) {
                Ok(v) => println!("python_only unexpectedly answered {v:?}"),
                Err(e) => println!("python_only failed: {}", e.to_string().lines().last().unwrap_or_default()),
            }
        }
        other => {
            eprintln!("usage: cross_language serve|use-python (got {other:?})");
            std::process::exit(2);
        }
    }
    Ok(())
}
