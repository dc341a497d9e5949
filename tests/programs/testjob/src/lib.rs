//! A job exercising the SDK end to end; the integration tests run it.
use serde::{Deserialize, Serialize};

#[wray::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[wray::remote]
fn fail(msg: String) -> Result<u32, String> {
    Err(msg)
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct Point {
    x: f64,
    y: f64,
}

#[wray::actor]
pub struct Counter {
    n: i64,
}

#[wray::actor]
impl Counter {
    pub fn new(start: i64) -> Self {
        Counter { n: start }
    }
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
    pub fn get(&self) -> i64 {
        self.n
    }
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), wray::Error> {
    let r = add::remote(1, 2);
    println!("add = {}", wray::get(&r)?);
    let r2 = add::options().num_cpus(0.5).remote(&r, 10);
    println!("add2 = {}", wray::get(&r2)?);
    let c = Counter::remote(5);
    c.incr(2);
    println!("counter = {}", wray::get(&c.get())?);
    println!("args = {args:?}");
    let e = wray::get(&fail::remote("boom".to_string()));
    println!("fail = {e:?}");
    Ok(())
}
