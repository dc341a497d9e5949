//! The SDK's implementation of the exported `entry` interface: finds the
//! function, constructor or method the host names among those the macros
//! registered (with `inventory`), decodes arguments, runs it, encodes the
//! result.

use crate::bindings::exports::wray::runtime::entry::Guest;
use crate::bindings::wray::runtime::{tasks, types as wit};
use std::any::Any;
use std::cell::RefCell;
use std::sync::Once;

/// What a registered function returns: the encoded result, or the failure in
/// words.
pub type Outcome = Result<wit::Value, String>;

/// A `#[wray::remote]` function.
pub struct RemoteFn {
    /// Full path, `crate::module::f`.
    pub name: &'static str,
    /// Decodes, calls, encodes.
    pub invoke: fn(Vec<Vec<u8>>) -> Outcome,
}

/// Builds an actor's state from encoded constructor arguments.
pub type Construct = fn(Vec<Vec<u8>>) -> Result<Box<dyn Any>, String>;

/// The constructor of a `#[wray::actor]` class.
pub struct ActorCtor {
    /// Full path of the type.
    pub class: &'static str,
    /// Decodes and constructs.
    pub new: Construct,
}

/// A method of a `#[wray::actor]` class.
pub struct ActorMethod {
    /// Full path of the type.
    pub class: &'static str,
    /// The method's name.
    pub method: &'static str,
    /// Decodes, calls on the state, encodes.
    pub invoke: fn(&mut dyn Any, Vec<Vec<u8>>) -> Outcome,
}

/// The `#[wray::main]` driver.
pub struct MainFn {
    /// Runs the driver.
    pub run: fn(Vec<String>) -> Result<(), String>,
}

inventory::collect!(RemoteFn);
inventory::collect!(ActorCtor);
inventory::collect!(ActorMethod);
inventory::collect!(MainFn);

thread_local! {
    /// The instance's actor: its class and state. One actor per instance.
    static ACTOR: RefCell<Option<(&'static str, Box<dyn Any>)>> = const { RefCell::new(None) };
}

/// Finds `name` among registered items: the full path (`crate::module::f`) or,
/// if unambiguous, the last segment alone (`f`), which is what an embedding
/// host usually knows.
fn lookup<'a, T>(
    items: impl Iterator<Item = &'a T> + Clone,
    name: &str,
    key: impl Fn(&T) -> &'static str,
) -> Result<&'a T, String> {
    if let Some(hit) = items.clone().find(|i| key(i) == name) {
        return Ok(hit);
    }
    let suffix = format!("::{name}");
    let mut hits = items.filter(|i| key(i).ends_with(&suffix));
    match (hits.next(), hits.next()) {
        (Some(hit), None) => Ok(hit),
        (Some(a), Some(b)) => Err(format!("{name:?} is ambiguous: {} and {} (at least)", key(a), key(b))),
        (None, _) => Err(format!("no {name:?} is registered in this component")),
    }
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-string payload".to_string()
            };
            let message = match info.location() {
                Some(l) => format!("panicked at {}:{}: {payload}", l.file(), l.line()),
                None => format!("panicked: {payload}"),
            };
            tasks::report_panic(&message);
        }));
    });
}

/// The component's export.
pub struct Entry;

impl Guest for Entry {
    fn main(args: Vec<String>) -> Result<(), String> {
        install_panic_hook();
        let mut mains = inventory::iter::<MainFn>();
        let Some(main) = mains.next() else {
            return Err("this component has no #[wray::main] function".to_string());
        };
        if mains.next().is_some() {
            return Err("this component has more than one #[wray::main] function".to_string());
        }
        (main.run)(args)
    }

    fn run_task(function: String, args: Vec<Vec<u8>>) -> Result<wit::Value, String> {
        install_panic_hook();
        // A scan, not a map: most tasks run in a fresh instance and look up
        // one name once, so a map built per instance cost more than it saved
        // (its SipHash and the random seed it asks the host for were 3 % of
        // a short task's CPU, measured with perf); comparing names stops at
        // the first differing length or byte.
        let f = lookup(inventory::iter::<RemoteFn>(), &function, |f| f.name)?;
        (f.invoke)(args)
    }

    fn actor_new(class: String, args: Vec<Vec<u8>>) -> Result<(), String> {
        install_panic_hook();
        crate::checkpoint::open_standard_streams();
        let ctor = lookup(inventory::iter::<ActorCtor>(), &class, |c| c.class)?;
        let state = (ctor.new)(args)?;
        ACTOR.with(|a| *a.borrow_mut() = Some((ctor.class, state)));
        Ok(())
    }

    fn actor_call(method: String, args: Vec<Vec<u8>>) -> Result<wit::Value, String> {
        install_panic_hook();
        // Take the state out while the method runs: a method that blocks in
        // `get` cannot be re-entered (the host runs one call at a time), and
        // a panic aborts the instance anyway.
        let (class, mut state) =
            ACTOR.with(|a| a.borrow_mut().take()).ok_or_else(|| "this instance holds no actor".to_string())?;
        // Every actor answers this one: a caller that must know the
        // constructor has run (a serve replica before it takes requests)
        // calls it and waits for the unit it returns. Its arguments, if
        // any, are method names the caller will use: a missing one fails
        // the call, naming the methods the class has.
        if method == READY_METHOD {
            let missing = args.iter().find_map(|a| {
                let name: String = crate::value::decode(a).unwrap_or_default();
                let known = inventory::iter::<ActorMethod>().any(|m| m.class == class && m.method == name);
                (!known).then_some(name)
            });
            let outcome = match missing {
                None => Ok(crate::value::encode(&())),
                Some(name) => {
                    let methods: Vec<&str> =
                        inventory::iter::<ActorMethod>().filter(|m| m.class == class).map(|m| m.method).collect();
                    Err(format!("{class} has no remote method {name:?} (it has: {})", methods.join(", ")))
                }
            };
            ACTOR.with(|a| *a.borrow_mut() = Some((class, state)));
            return outcome;
        }
        let outcome = inventory::iter::<ActorMethod>()
            .find(|m| m.class == class && m.method == method)
            .ok_or_else(|| format!("{class} has no remote method {method:?}"))
            .and_then(|m| (m.invoke)(state.as_mut(), args));
        ACTOR.with(|a| *a.borrow_mut() = Some((class, state)));
        outcome
    }

    fn snapshot() -> Result<(), String> {
        crate::checkpoint::snapshot()
    }

    fn restore() -> Result<(), String> {
        crate::checkpoint::restore()
    }
}

/// The method every actor answers with `()` once its constructor has run
/// (see `actor_call`); the host's serve controller calls it.
pub const READY_METHOD: &str = "__wray_ready";
