//! The attribute macros of the wray guest SDK. Use them through the `wray`
//! crate (`#[wray::remote]`, `#[wray::actor]`, `#[wray::main]`); the expanded
//! code names `::wray`, so the SDK must be a dependency under that name.
//!
//! Each macro keeps the user's item as written and adds the remote-call
//! surface next to it; misuse is reported as a compile error on the
//! offending span.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, Item, ItemFn, ItemImpl, Pat, ReturnType, Signature, Type};

/// See `wray::remote`.
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, |item| match item {
        Item::Fn(f) => remote_fn(f),
        other => Err(syn::Error::new(
            other.span(),
            "#[wray::remote] goes on a free function; for a type, use #[wray::actor] on its impl block",
        )),
    })
}

/// See `wray::actor`.
#[proc_macro_attribute]
pub fn actor(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, |item| match item {
        Item::Impl(i) => actor_impl(i),
        // On the struct the attribute only marks the type for readers; the
        // impl block carries everything the runtime needs.
        Item::Struct(s) => {
            if !s.generics.params.is_empty() {
                return Err(syn::Error::new(s.generics.span(), "actor types cannot be generic"));
            }
            Ok(quote!(#s))
        }
        other => Err(syn::Error::new(other.span(), "#[wray::actor] goes on a struct and on its impl block")),
    })
}

/// See `wray::main`.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, |item| match item {
        Item::Fn(f) => main_fn(f),
        other => Err(syn::Error::new(other.span(), "#[wray::main] goes on a function")),
    })
}

fn expand(attr: TokenStream, item: TokenStream, f: impl FnOnce(Item) -> syn::Result<TokenStream2>) -> TokenStream {
    let attr = TokenStream2::from(attr);
    if !attr.is_empty() {
        return syn::Error::new(
            attr.span(),
            "this attribute takes no arguments; options are set at the call site with `options()`",
        )
        .to_compile_error()
        .into();
    }
    match syn::parse::<Item>(item).and_then(f) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// A parameter of a remote function or method: its name and owned type.
struct Param {
    name: Ident,
    ty: Type,
}

/// Checks what every remotely callable signature must satisfy and returns
/// the parameters after the receiver (if any).
fn remote_params(sig: &Signature, what: &str) -> syn::Result<Vec<Param>> {
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new(
            a.span(),
            format!("{what} cannot be async: a Wasm task blocks in wray::get instead"),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("{what} cannot be generic: the runtime calls it by name with encoded arguments"),
        ));
    }
    if let Some(v) = &sig.variadic {
        return Err(syn::Error::new(v.span(), format!("{what} cannot be variadic")));
    }
    let mut params = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(pt) = input else { continue };
        let name = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                return Err(syn::Error::new(other.span(), "parameters of a remote call must be plain names (`x: T`)"));
            }
        };
        if let Type::Reference(r) = &*pt.ty {
            return Err(syn::Error::new(
                r.span(),
                "parameters of a remote call must be owned types: the value is sent to another instance (use `String` for `&str`, `Vec<T>` for `&[T]`)",
            ));
        }
        if let Type::ImplTrait(t) = &*pt.ty {
            return Err(syn::Error::new(t.span(), "parameters of a remote call must be concrete types"));
        }
        params.push(Param { name, ty: (*pt.ty).clone() });
    }
    Ok(params)
}

/// How a function's result becomes the object its caller gets.
struct Returns {
    /// The `T` of the caller's `ObjectRef<T>`.
    object_ty: TokenStream2,
    /// Whether the result is a `Result` whose `Err` fails the task.
    fallible: bool,
}

fn returns(ret: &ReturnType) -> Returns {
    match ret {
        ReturnType::Default => Returns { object_ty: quote!(()), fallible: false },
        ReturnType::Type(_, ty) => {
            if is_result(ty) {
                Returns { object_ty: quote!(<#ty as ::wray::__private::TaskResult>::Ok), fallible: true }
            } else {
                Returns { object_ty: quote!(#ty), fallible: false }
            }
        }
    }
}

/// `Result<..>`, `std::result::Result<..>`, `anyhow::Result<..>`, ...: any
/// path whose last segment is `Result`. Such a return means "Err fails the
/// task"; the type must then implement `wray::__private::TaskResult`
/// (`Result<T, E: Display>` does).
fn is_result(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Result"))
}

/// The statements that decode `params` from `args` (a `Vec<Vec<u8>>`) under
/// the name `name_expr`.
fn decode_params(params: &[Param], name_expr: &TokenStream2) -> TokenStream2 {
    let n = params.len();
    let slots: Vec<Ident> = (0..n).map(|i| format_ident!("__arg{}", i)).collect();
    let decodes = params.iter().zip(&slots).map(|(p, slot)| {
        let (name, ty) = (&p.name, &p.ty);
        let label = name.to_string();
        quote_spanned! {ty.span()=>
            let #name: #ty = ::wray::__private::decode_arg(#name_expr, #label, &#slot)?;
        }
    });
    quote! {
        let [#(#slots),*] = ::wray::__private::take_args::<#n>(#name_expr, args)?;
        #(#decodes)*
    }
}

fn finish_outcome(call: TokenStream2, fallible: bool) -> TokenStream2 {
    if fallible {
        quote! {
            let __out = ::wray::__private::TaskResult::into_task_result(#call)?;
            ::wray::__private::encode_ok(&__out)
        }
    } else {
        quote! {
            let __out = #call;
            ::wray::__private::encode_ok(&__out)
        }
    }
}

/// The `T` of a return type `impl Iterator<Item = T>` (a generator task),
/// or of `Result<impl Iterator<Item = T>, E>` (one that can fail before
/// its first item), with whether it is the `Result` form.
fn generator_item(ret: &ReturnType) -> Option<(Type, bool)> {
    let ReturnType::Type(_, ty) = ret else {
        return None;
    };
    if let Some(item) = iterator_item(ty) {
        return Some((item, false));
    }
    if is_result(ty)
        && let Type::Path(p) = &**ty
        && let Some(last) = p.path.segments.last()
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(syn::GenericArgument::Type(ok)) = args.args.first()
    {
        return iterator_item(ok).map(|item| (item, true));
    }
    None
}

fn iterator_item(ty: &Type) -> Option<Type> {
    let Type::ImplTrait(t) = ty else {
        return None;
    };
    t.bounds.iter().find_map(|b| {
        let syn::TypeParamBound::Trait(tb) = b else {
            return None;
        };
        let last = tb.path.segments.last()?;
        if last.ident != "Iterator" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|a| match a {
            syn::GenericArgument::AssocType(at) if at.ident == "Item" => Some(at.ty.clone()),
            _ => None,
        })
    })
}

/// The body of a generator's invoke: each item of `call`'s iterator
/// handed to the host as it comes (`Err` from a fallible generator fails
/// it first), then `()`; `label` names it in errors.
fn yield_outcome(call: TokenStream2, item: &Type, fallible: bool, label: TokenStream2) -> TokenStream2 {
    let items = if fallible { quote!(::wray::__private::TaskResult::into_task_result(#call)?) } else { call };
    quote! {
        for __item in #items {
            ::wray::__private::yield_item::<#item>(#label, &__item)?;
        }
        ::wray::__private::encode_ok(&())
    }
}

fn remote_fn(f: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &f.sig;
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        return Err(syn::Error::new(
            r.span(),
            "#[wray::remote] functions cannot take self; use #[wray::actor] for methods",
        ));
    }
    let params = remote_params(sig, "a remote function")?;
    let vis = &f.vis;
    let name = &sig.ident;
    let names: Vec<&Ident> = params.iter().map(|p| &p.name).collect();
    let tys: Vec<&Type> = params.iter().map(|p| &p.ty).collect();
    let decode = decode_params(&params, &quote!(NAME));
    let call = quote!(super::#name(#(#names),*));
    // A generator's call gives an `ObjectRefGenerator` of its items; its
    // task yields each item, then returns `()`.
    let (returned, submit, outcome, what) = match generator_item(&sig.output) {
        Some((item, fallible)) => (
            quote!(::wray::ObjectRefGenerator<#item>),
            quote!(::wray::__private::submit_generator),
            yield_outcome(call, &item, fallible, quote!(NAME)),
            "the generator of its items (`wray::ObjectRefGenerator`)",
        ),
        None => {
            let Returns { object_ty, fallible } = returns(&sig.output);
            (
                quote!(::wray::ObjectRef<#object_ty>),
                quote!(::wray::__private::submit),
                finish_outcome(call, fallible),
                "a ref to its result",
            )
        }
    };
    let doc_mod = format!("Remote calls of [`{name}`](fn@{name}): `{name}::remote(..)` and `{name}::options()`.");
    let doc_remote = format!(
        "Submits a call of [`{name}`](fn@super::{name}) as a task; returns {what}. Each argument may be a value, an `ObjectRef` or a `&ObjectRef`."
    );

    Ok(quote! {
        #f

        #[doc = #doc_mod]
        #[allow(non_snake_case, clippy::all)]
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            /// The name the runtime knows this function by.
            pub const NAME: &str = ::core::module_path!();

            #[doc = #doc_remote]
            pub fn remote(#(#names: impl ::core::convert::Into<::wray::Arg<#tys>>),*) -> #returned {
                options().remote(#(#names),*)
            }

            /// Options for one call: set them, then call `.remote(..)`.
            pub fn options() -> Options {
                Options(::core::default::Default::default())
            }

            /// Options for one call of this function.
            #[derive(Clone, Debug)]
            pub struct Options(::wray::CallOptions);

            impl Options {
                ::wray::__task_options_methods!();

                /// Submits the call with these options.
                pub fn remote(self, #(#names: impl ::core::convert::Into<::wray::Arg<#tys>>),*) -> #returned {
                    #submit(
                        NAME,
                        ::std::vec![#(::wray::__private::RawArg::new::<#tys>(#names.into())),*],
                        &self.0,
                    )
                }
            }

            fn __invoke(args: ::std::vec::Vec<::std::vec::Vec<u8>>) -> ::wray::__private::Outcome {
                #decode
                #outcome
            }

            ::wray::__private::inventory::submit! {
                ::wray::__private::RemoteFn { name: NAME, invoke: __invoke }
            }
        }
    })
}

fn returns_self(ret: &ReturnType, self_name: &Ident) -> Option<bool> {
    let ReturnType::Type(_, ty) = ret else {
        return None;
    };
    let is_self = |t: &Type| matches!(t, Type::Path(p) if p.qself.is_none() && (p.path.is_ident("Self") || p.path.is_ident(self_name)));
    if is_self(ty) {
        return Some(false);
    }
    // `Result<Self, E>`: a constructor that can fail.
    if let Type::Path(p) = &**ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let syn::PathArguments::AngleBracketed(a) = &last.arguments
        && let Some(syn::GenericArgument::Type(first)) = a.args.first()
        && is_self(first)
    {
        return Some(true);
    }
    None
}

fn actor_impl(item: ItemImpl) -> syn::Result<TokenStream2> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[wray::actor] goes on the type's inherent impl block, not a trait impl",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(item.generics.span(), "actor types cannot be generic"));
    }
    let Type::Path(tp) = &*item.self_ty else {
        return Err(syn::Error::new(item.self_ty.span(), "#[wray::actor] needs a named struct type"));
    };
    let Some(ty_ident) = tp.path.get_ident().cloned() else {
        return Err(syn::Error::new(tp.span(), "write the actor type by its plain name (`impl Counter`)"));
    };
    let methods_ty = format_ident!("{}Methods", ty_ident);
    let options_ty = format_ident!("{}Options", ty_ident);

    // Candidate constructors: associated functions returning Self.
    let mut ctors: Vec<(Signature, bool)> = Vec::new();
    let mut stubs = Vec::new();
    let mut registrations = Vec::new();
    for it in &item.items {
        let ImplItem::Fn(m) = it else { continue };
        let sig = &m.sig;
        match sig.inputs.first() {
            Some(FnArg::Receiver(r)) => {
                if r.reference.is_none() {
                    return Err(syn::Error::new(
                        r.span(),
                        "actor methods take `&self` or `&mut self`: the actor outlives the call",
                    ));
                }
                let params = remote_params(sig, "an actor method")?;
                let mname = &sig.ident;
                let mlabel = mname.to_string();
                let names: Vec<&Ident> = params.iter().map(|p| &p.name).collect();
                let tys: Vec<&Type> = params.iter().map(|p| &p.ty).collect();
                let name_expr = quote!(__FULL);
                let decode = decode_params(&params, &name_expr);
                let invoke = format_ident!("__wray_invoke_{}", mname);
                let call = quote!(__this.#mname(#(#names),*));
                let raw_args = quote!(::std::vec![#(::wray::__private::RawArg::new::<#tys>(#names.into())),*]);
                // A generator method, like a generator function: the call
                // gives an `ObjectRefGenerator` of the items it yields.
                let (returned, submitted, outcome, what) = match generator_item(&sig.output) {
                    Some((item, fallible)) => (
                        quote!(::wray::ObjectRefGenerator<#item>),
                        quote!(::wray::__private::generator_of(self.raw.call(#mlabel, #raw_args))),
                        yield_outcome(call, &item, fallible, quote!(__FULL)),
                        "the generator of the items it yields",
                    ),
                    None => {
                        let Returns { object_ty, fallible } = returns(&sig.output);
                        (
                            quote!(::wray::ObjectRef<#object_ty>),
                            quote!(self.raw.call(#mlabel, #raw_args)),
                            finish_outcome(call, fallible),
                            "a ref to its result",
                        )
                    }
                };
                let doc = format!("Calls [`{ty_ident}::{mname}`] on the actor; returns {what}.");
                stubs.push(quote! {
                    #[doc = #doc]
                    pub fn #mname(&self, #(#names: impl ::core::convert::Into<::wray::Arg<#tys>>),*) -> #returned {
                        #submitted
                    }
                });
                registrations.push(quote! {
                    fn #invoke(__state: &mut dyn ::core::any::Any, args: ::std::vec::Vec<::std::vec::Vec<u8>>) -> ::wray::__private::Outcome {
                        const __FULL: &str = ::core::concat!(::core::stringify!(#ty_ident), ".", #mlabel);
                        let __this = __state
                            .downcast_mut::<#ty_ident>()
                            .ok_or_else(|| ::std::format!("{}: the instance holds another actor class", __FULL))?;
                        #decode
                        #outcome
                    }
                    ::wray::__private::inventory::submit! {
                        ::wray::__private::ActorMethod {
                            class: <#ty_ident as ::wray::Actor>::CLASS,
                            method: #mlabel,
                            invoke: #invoke,
                        }
                    }
                });
            }
            _ => {
                if let Some(fallible) = returns_self(&sig.output, &ty_ident) {
                    ctors.push((sig.clone(), fallible));
                }
            }
        }
    }
    // The constructor is `new` if there is one, else the only function
    // returning Self; other Self-returning helpers stay local.
    let ctor = match ctors.iter().position(|(sig, _)| sig.ident == "new") {
        Some(i) => Some(ctors.swap_remove(i)),
        None if ctors.len() > 1 => {
            return Err(syn::Error::new(
                ctors[1].0.ident.span(),
                "an actor with several associated functions returning Self needs one named `new`: it is the constructor",
            ));
        }
        None => ctors.pop(),
    };
    let Some((ctor_sig, ctor_fallible)) = ctor else {
        return Err(syn::Error::new(
            item.self_ty.span(),
            "an actor needs a constructor: an associated function returning Self (or Result<Self, E>), e.g. `pub fn new(..) -> Self`",
        ));
    };
    let ctor_params = remote_params(&ctor_sig, "an actor constructor")?;
    let ctor_name = &ctor_sig.ident;
    let cnames: Vec<&Ident> = ctor_params.iter().map(|p| &p.name).collect();
    let ctys: Vec<&Type> = ctor_params.iter().map(|p| &p.ty).collect();
    let ctor_label = quote!(<#ty_ident as ::wray::Actor>::CLASS);
    let ctor_decode = decode_params(&ctor_params, &ctor_label);
    let construct = if ctor_fallible {
        quote!(::wray::__private::TaskResult::into_task_result(#ty_ident::#ctor_name(#(#cnames),*))?)
    } else {
        quote!(#ty_ident::#ctor_name(#(#cnames),*))
    };
    let doc_methods = format!("The remote methods of [`{ty_ident}`], called through an `ActorHandle<{ty_ident}>`.");
    let doc_options = format!("Options for creating a [`{ty_ident}`] actor: set them, then call `.remote(..)`.");
    let span = Span::call_site();

    Ok(quote_spanned! {span=>
        #item

        impl ::wray::Actor for #ty_ident {
            const CLASS: &'static str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ty_ident));
            type Methods = #methods_ty;
        }

        #[doc = #doc_methods]
        pub struct #methods_ty {
            raw: ::wray::__private::RawActor,
        }

        impl ::wray::__private::ActorMethods for #methods_ty {
            fn from_raw(raw: ::wray::__private::RawActor) -> Self {
                #methods_ty { raw }
            }
            fn raw(&self) -> &::wray::__private::RawActor {
                &self.raw
            }
        }

        impl #methods_ty {
            #(#stubs)*
        }

        #[doc = #doc_options]
        #[derive(Clone, Debug)]
        pub struct #options_ty(::wray::CallOptions);

        impl #options_ty {
            ::wray::__actor_options_methods!();

            /// Creates the actor. Panics if the runtime refuses the options
            /// (e.g. the name is taken); see `try_remote`.
            pub fn remote(self, #(#cnames: impl ::core::convert::Into<::wray::Arg<#ctys>>),*) -> ::wray::ActorHandle<#ty_ident> {
                match self.try_remote(#(#cnames),*) {
                    ::core::result::Result::Ok(h) => h,
                    ::core::result::Result::Err(e) => ::core::panic!("creating actor {}: {}", <#ty_ident as ::wray::Actor>::CLASS, e),
                }
            }

            /// Creates the actor, returning the runtime's refusal as an error.
            /// A constructor that fails later makes calls fail with
            /// `Error::ActorDied`.
            pub fn try_remote(self, #(#cnames: impl ::core::convert::Into<::wray::Arg<#ctys>>),*) -> ::core::result::Result<::wray::ActorHandle<#ty_ident>, ::wray::Error> {
                ::wray::__private::create_actor::<#ty_ident>(
                    ::std::vec![#(::wray::__private::RawArg::new::<#ctys>(#cnames.into())),*],
                    &self.0,
                )
            }
        }

        impl #ty_ident {
            /// Creates the actor with default options.
            pub fn remote(#(#cnames: impl ::core::convert::Into<::wray::Arg<#ctys>>),*) -> ::wray::ActorHandle<#ty_ident> {
                Self::options().remote(#(#cnames),*)
            }

            /// Options for creating the actor.
            pub fn options() -> #options_ty {
                #options_ty(::core::default::Default::default())
            }
        }

        const _: () = {
            fn __wray_new(args: ::std::vec::Vec<::std::vec::Vec<u8>>) -> ::core::result::Result<::std::boxed::Box<dyn ::core::any::Any>, ::std::string::String> {
                #ctor_decode
                let __actor: #ty_ident = #construct;
                ::core::result::Result::Ok(::std::boxed::Box::new(__actor))
            }
            ::wray::__private::inventory::submit! {
                ::wray::__private::ActorCtor { class: <#ty_ident as ::wray::Actor>::CLASS, new: __wray_new }
            }
            #(#registrations)*
        };
    })
}

fn main_fn(f: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &f.sig;
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new(a.span(), "#[wray::main] cannot be async"));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(sig.generics.span(), "#[wray::main] cannot be generic"));
    }
    let name = &sig.ident;
    let call = match sig.inputs.len() {
        0 => quote!(#name()),
        1 => quote!(#name(args)),
        _ => {
            return Err(syn::Error::new(
                sig.inputs.span(),
                "#[wray::main] takes no parameters or one `args: Vec<String>`",
            ));
        }
    };
    Ok(quote! {
        #f

        const _: () = {
            fn __wray_main(args: ::std::vec::Vec<::std::string::String>) -> ::core::result::Result<(), ::std::string::String> {
                let _ = &args;
                ::wray::__private::MainResult::into_main_result(#call)
            }
            ::wray::__private::inventory::submit! {
                ::wray::__private::MainFn { run: __wray_main }
            }
        };
    })
}
