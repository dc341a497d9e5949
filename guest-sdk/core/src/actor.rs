use crate::arg::{RawArg, with_wit_args};
use crate::bindings::wray::runtime::{actors, cluster, serve, types as wit};
use crate::options::CallOptions;
use crate::{Error, ObjectRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

/// A type made into an actor class by `#[wray::actor]` on its `impl` block.
/// Implemented by the macro; you never implement it by hand.
pub trait Actor: Sized + 'static {
    /// The class name the runtime knows the type by (`crate::path::Type`).
    const CLASS: &'static str;
    /// The generated type carrying the remote versions of the methods.
    type Methods: ActorMethods;
}

/// Implemented by the generated `TypeMethods` struct.
#[doc(hidden)]
pub trait ActorMethods {
    fn from_raw(raw: RawActor) -> Self;
    fn raw(&self) -> &RawActor;
}

/// Where the generated method stubs send calls: one actor, or (for a
/// serve deployment's handle) whichever replica of the deployment the host
/// picks per call.
#[doc(hidden)]
#[derive(Clone)]
pub struct RawActor {
    pub(crate) id: wit::ActorId,
    /// Set for a deployment handle: the deployment's name (`id` is unused).
    pub(crate) deployment: Option<std::sync::Arc<str>>,
    /// The calls' `generator_backpressure`
    /// ([`ActorHandle::with_generator_backpressure`]).
    pub(crate) generator_backpressure: Option<u32>,
    /// The reference that keeps the actor alive (`actors.handle`), shared
    /// by clones: once every one in the job is gone the actor ends. `None`
    /// for an actor the host keeps until it is killed (detached ones, for
    /// example) and for a deployment.
    pub(crate) keep: Option<ObjectRef<()>>,
}

impl RawActor {
    /// A handle on actor `id` kept alive by `keep`.
    fn actor(id: wit::ActorId, keep: Option<ObjectRef<()>>) -> RawActor {
        RawActor { id, deployment: None, generator_backpressure: None, keep }
    }

    /// A handle on actor `id`, holding it alive as the host allows.
    pub(crate) fn held(id: wit::ActorId) -> Result<RawActor, wit::Error> {
        Ok(RawActor::actor(id, actors::handle(id)?.map(ObjectRef::from_handle)))
    }

    /// Calls go to a replica of the caller's application's deployment
    /// `name`.
    pub fn deployment(name: &str) -> RawActor {
        RawActor {
            id: wit::ActorId { hi: 0, lo: 0 },
            deployment: Some(name.into()),
            generator_backpressure: None,
            keep: None,
        }
    }

    /// The same target, its generator-method calls paused while `n` of
    /// their items wait unread. Panics if `n` is 0.
    pub fn with_generator_backpressure(&self, n: u32) -> RawActor {
        assert!(n > 0, "generator_backpressure must be at least 1");
        RawActor { generator_backpressure: Some(n), ..self.clone() }
    }

    /// Queues a method call; a failure to queue it is the error.
    fn try_call<R>(&self, method: &str, args: Vec<RawArg>) -> Result<ObjectRef<R>, wit::Error> {
        let options = self.generator_backpressure.map(|n| actors::CallOptions { generator_backpressure: Some(n) });
        let handle = with_wit_args(args, |a| match (&self.deployment, options) {
            (None, None) => actors::call(self.id, method, a),
            (None, Some(o)) => actors::call_with(self.id, method, a, o),
            (Some(d), None) => serve::call(d, method, a),
            (Some(d), Some(o)) => serve::call_with(d, method, a, o),
        })?;
        Ok(ObjectRef::from_handle(handle))
    }

    /// Queues a method call (panicking, as a generated stub does, if it
    /// cannot be queued).
    pub fn call<R>(&self, method: &str, args: Vec<RawArg>) -> ObjectRef<R> {
        match self.try_call(method, args) {
            Ok(r) => r,
            Err(e) => match &self.deployment {
                None => panic!("calling actor method {method}: {}", Error::from(e)),
                Some(d) => panic!("calling {method} on deployment {d:?}: {}", Error::from(e)),
            },
        }
    }

    fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.id.hi, self.id.lo)
    }
}

/// A handle on a running actor of class `A` — Ray's `ActorHandle`.
///
/// Returned by `A::remote(..)` and [`get_actor`]. Call the actor's methods on
/// it: each call returns an [`ObjectRef`] to the method's result, and calls
/// from one caller run in the order they were made. Handles are cheap to
/// clone and can be passed to tasks and to other actors (as arguments or
/// nested in values).
///
/// **Handles keep their actor alive**, as in Ray: once every handle to it
/// is dropped — in the driver, in tasks and actors, nested in values and
/// arguments — the actor runs the calls already queued to it and ends,
/// freeing its resources and its name (results already made stay
/// readable). Keep a handle (or the actor's name and a handle somewhere)
/// for as long as you want the actor. On a cluster, handles on other nodes
/// count as well (an actor whose handle was on a node that died lives until
/// its job ends). Detached actors are not collected this way: they live
/// until [`kill`]ed or they fail.
pub struct ActorHandle<A: Actor> {
    methods: A::Methods,
    _class: PhantomData<fn() -> A>,
}

impl<A: Actor> ActorHandle<A> {
    #[doc(hidden)]
    pub fn from_raw(raw: RawActor) -> ActorHandle<A> {
        ActorHandle { methods: A::Methods::from_raw(raw), _class: PhantomData }
    }

    /// The actor's id in hex. (Named so as not to hide an actor method
    /// called `id`: methods of the actor are reached through this handle.)
    pub fn actor_id(&self) -> String {
        self.methods.raw().hex()
    }

    /// A handle on the same actor whose calls of generator methods pause
    /// while `n` of their items wait unread — yielded, but not yet handed
    /// out by the caller's `next()` — and go on as the caller takes one:
    /// Ray's `handle.method.options(_generator_backpressure_num_objects=n)`,
    /// as [`CallOptions::generator_backpressure`] is for remote functions.
    /// Paused, the method holds its actor, whose later calls wait behind
    /// it. Calls of other methods are not affected; the setting stays with
    /// this handle (a handle passed to a task or stored in a value arrives
    /// without it). Panics if `n` is 0. For example
    /// `reader.with_generator_backpressure(4).lines(path)`.
    pub fn with_generator_backpressure(&self, n: u32) -> ActorHandle<A> {
        ActorHandle::from_raw(self.methods.raw().with_generator_backpressure(n))
    }
}

impl<A: Actor> Deref for ActorHandle<A> {
    type Target = A::Methods;
    fn deref(&self) -> &A::Methods {
        &self.methods
    }
}

impl<A: Actor> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle::from_raw(self.methods.raw().clone())
    }
}

impl<A: Actor> fmt::Debug for ActorHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorHandle<{}>({})", A::CLASS, self.actor_id())
    }
}

// A handle travels as the actor's id and its keeping reference, a nested
// ref like any other: the value holding it keeps the actor alive.
impl<A: Actor> Serialize for ActorHandle<A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = self.methods.raw();
        (raw.id.hi, raw.id.lo, &raw.keep).serialize(s)
    }
}

impl<'de, A: Actor> Deserialize<'de> for ActorHandle<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (hi, lo, keep) = <(u64, u64, Option<ObjectRef<()>>)>::deserialize(d)?;
        Ok(ActorHandle::from_raw(RawActor::actor(wit::ActorId { hi, lo }, keep)))
    }
}

/// Creates an actor of class `A`; used by the generated `A::remote`.
#[doc(hidden)]
pub fn create_actor<A: Actor>(args: Vec<RawArg>, options: &CallOptions) -> Result<ActorHandle<A>, Error> {
    let opts = options.to_wit();
    let id = with_wit_args(args, |a| actors::create(A::CLASS, a, &opts))?;
    Ok(ActorHandle::from_raw(RawActor::held(id)?))
}

/// Finds the actor registered under `name` (with `Type::options().name(..)`)
/// — Ray's `ray.get_actor`. Fails if no such actor exists or if it is not of
/// class `A`. The handle keeps the actor alive as any other does; a named
/// actor whose handles were all dropped is gone, its name with it.
pub fn get_actor<A: Actor>(name: &str) -> Result<ActorHandle<A>, Error> {
    let (id, class) = actors::get_named(name)?;
    if class != A::CLASS {
        return Err(Error::InvalidArgument(format!("actor {name:?} is a {class}, not a {}", A::CLASS)));
    }
    Ok(ActorHandle::from_raw(RawActor::held(id)?))
}

/// The names [`get_actor`] and [`get_actor_dyn`] find from here, sorted:
/// the job's live named actors and the cluster's detached actors — Ray's
/// `ray.util.list_named_actors()`. A name is gone once its actor has died
/// (killed, or failed past its restarts).
pub fn list_named_actors() -> Result<Vec<String>, Error> {
    Ok(actors::list_named()?)
}

/// Kills the actor — Ray's `ray.kill`. Queued and later calls fail with
/// [`Error::ActorDied`]; the actor is not restarted.
pub fn kill<A: Actor>(handle: &ActorHandle<A>) {
    // Killing an already dead actor is not an error, as in Ray.
    let _ = actors::kill(handle.methods.raw().id, true);
}

/// Ends the actor whose method calls it, for good — Ray's
/// `ray.actor.exit_actor()`: that call fails, as do the calls queued behind
/// it, with [`Error::ActorDied`], and the actor is not restarted whatever
/// its `max_restarts`. Anywhere but in an actor's method it panics (a task
/// fails with the message).
pub fn exit_actor() -> ! {
    let Some(me) = cluster::context().actor_id else {
        panic!("wray::exit_actor must be called from one of an actor's methods");
    };
    let _ = actors::kill(me, true);
    // The host stops this call within one tick of its clock: nothing of the
    // method runs after this.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// A handle on a named actor of any language, called by method name with
/// [`Value`](crate::Value) arguments — how a Rust job calls a Python job's
/// actor (`get_actor_dyn("counter")?.call("incr", [Value::from(5)])`).
///
/// Arguments travel in wray's cross-language encoding, one per positional
/// parameter; the result is read back as a `Value`. A Python actor answers
/// a caller that speaks this encoding in it (its method must return plain
/// data: None, bool, int, float, str, bytes, list, dict or an
/// `array.array`); a Rust actor's method must take and return
/// `wray::Value`s to be called this way.
#[derive(Clone)]
pub struct DynActor {
    raw: RawActor,
    class: String,
}

impl DynActor {
    /// The actor's class as it was created: `crate::module::Type` for a Rust
    /// actor, the class's `__qualname__` for a Python one.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The actor's id in hex.
    pub fn actor_id(&self) -> String {
        self.raw.hex()
    }

    /// Queues a call of `method` on `args`; returns a reference to its
    /// result. Calls from one caller run in the order they were made.
    pub fn call(
        &self,
        method: &str,
        args: impl IntoIterator<Item = crate::Value>,
    ) -> Result<ObjectRef<crate::Value>, Error> {
        Ok(self.raw.try_call(method, value_args(args))?)
    }

    /// Queues a call of a generator method (a Python method that `yield`s,
    /// sync or async) and returns its items as they are made, each a
    /// reference to one [`Value`](crate::Value) — Ray's
    /// `ObjectRefGenerator`. Through [`call`](DynActor::call), such a
    /// method's result is only its end (`None`). An error the method
    /// raises comes after the last item it yielded, as the generator's
    /// next item.
    pub fn call_generator(
        &self,
        method: &str,
        args: impl IntoIterator<Item = crate::Value>,
    ) -> Result<crate::ObjectRefGenerator<crate::Value>, Error> {
        Ok(crate::ObjectRefGenerator::new(self.raw.try_call(method, value_args(args))?))
    }

    /// A handle on the same actor whose generator-method calls
    /// ([`call_generator`](DynActor::call_generator)) pause while `n` of
    /// their items wait unread, as
    /// [`ActorHandle::with_generator_backpressure`]. Panics if `n` is 0.
    pub fn with_generator_backpressure(&self, n: u32) -> DynActor {
        DynActor { raw: self.raw.with_generator_backpressure(n), class: self.class.clone() }
    }
}

/// A dynamic call's arguments: one cross-language value each.
fn value_args(args: impl IntoIterator<Item = crate::Value>) -> Vec<RawArg> {
    args.into_iter().map(|v| RawArg::new(crate::Arg::Value(v))).collect()
}

impl fmt::Debug for DynActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynActor<{}>({})", self.class, self.actor_id())
    }
}

/// Finds the actor registered under `name`, whatever its language or class
/// — for calling a Python job's detached actor from Rust ([`DynActor`]).
pub fn get_actor_dyn(name: &str) -> Result<DynActor, Error> {
    let (id, class) = actors::get_named(name)?;
    Ok(DynActor { raw: RawActor::held(id)?, class })
}
