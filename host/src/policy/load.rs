//! Loading a policy: checks that the bytes are a component of our WIT world
//! that imports nothing, then compiles it once into an `InstancePre`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::cache::CompiledCache;
use super::engine::{EngineInner, PolicyEngine};
use super::instance::GuestState;
use super::{POLICY_INTERFACE, PolicyError, StatusPolicyPre, WIT_VERSION};

/// A validated, compiled policy. Cheap to clone; instantiate it with
/// [`crate::policy::PolicyInstance::new`].
#[derive(Clone)]
pub struct Policy {
    pub(crate) pre: StatusPolicyPre<GuestState>,
    pub(crate) engine: Arc<EngineInner>,
    info: Arc<PolicyInfo>,
}

/// What `status-router policy check` reports about a policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicyInfo {
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// The exported interface, with its version.
    pub interface: String,
    /// The version of the WIT package the policy was built against.
    pub version: String,
    /// The functions the interface exports.
    pub functions: Vec<String>,
    /// What built it, from its producers sections (`language: Python`,
    /// `processed-by: componentize-py 0.25.1`, ...); empty when it does not say.
    pub producers: Vec<String>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy").field("info", &self.info).finish()
    }
}

impl Policy {
    /// Facts about the loaded component.
    pub fn info(&self) -> &PolicyInfo {
        &self.info
    }
}

impl PolicyEngine {
    /// Reads, validates and compiles a policy file.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load(&bytes)
    }

    /// Validates and compiles a policy component.
    pub fn load(&self, bytes: &[u8]) -> Result<Policy, PolicyError> {
        self.load_cached(bytes, None).map(|(policy, _)| policy)
    }

    /// Validates a policy component, taking its compiled code from `cache`
    /// when there, compiling (and caching) it otherwise. Returns whether the
    /// cache served it.
    pub fn load_cached(
        &self,
        bytes: &[u8],
        cache: Option<&CompiledCache>,
    ) -> Result<(Policy, bool), PolicyError> {
        if !wasmparser::Parser::is_component(bytes) {
            return Err(PolicyError::NotAComponent(
                if wasmparser::Parser::is_core_wasm(bytes) {
                    "this is a core WebAssembly module; turn it into a component with \
                     wit-component (`cargo xtask build-policies` does)"
                        .into()
                } else {
                    "the bytes do not start with the WebAssembly component header".into()
                },
            ));
        }
        let engine = &self.inner.engine;
        let digest = format!("sha256:{:x}", Sha256::digest(bytes));
        let (component, cached) = match cache.and_then(|c| c.get(engine, &digest)) {
            Some(component) => (component, true),
            None => {
                let component = Component::new(engine, bytes).map_err(PolicyError::Compile)?;
                if let Some(cache) = cache {
                    cache.put(engine, &digest, &component);
                }
                (component, false)
            }
        };
        let ty = component.component_type();

        let imports: Vec<String> = ty
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        if !imports.is_empty() {
            return Err(PolicyError::HasImports { imports });
        }

        let exports: Vec<(String, ComponentItem)> = ty
            .exports(engine)
            .map(|(name, item)| (name.to_string(), item.ty))
            .collect();
        let mismatch = |reason: String| PolicyError::WorldMismatch {
            expected: POLICY_INTERFACE.into(),
            reason,
        };
        let Some((interface, item)) = exports.iter().find(|(n, _)| n == POLICY_INTERFACE) else {
            let prefix = POLICY_INTERFACE.split('@').next().unwrap_or_default();
            let names: Vec<&str> = exports.iter().map(|(n, _)| n.as_str()).collect();
            return Err(mismatch(
                match names.iter().find(|n| n.starts_with(prefix)) {
                    Some(other) => format!(
                        "it exports {other}, built against another version of the WIT package; \
                     this host speaks {WIT_VERSION}"
                    ),
                    None => format!("missing export {POLICY_INTERFACE}; it exports {names:?}"),
                },
            ));
        };
        let functions = match item {
            ComponentItem::ComponentInstance(instance) => instance
                .exports(engine)
                .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
                .map(|(name, _)| name.to_string())
                .collect(),
            _ => return Err(mismatch(format!("{interface} is not an instance"))),
        };

        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(PolicyError::Instantiate)?;
        // Other exports (componentize-py's own `init`, say) are ignored: only
        // the policy interface is looked up. Finds the exports by name; their types are only checked when an
        // instance is created, which the trial below does.
        let pre = StatusPolicyPre::new(pre).map_err(|e| mismatch(format!("{e:#}")))?;

        let policy = Policy {
            pre,
            engine: self.inner.clone(),
            info: Arc::new(PolicyInfo {
                digest,
                size: bytes.len(),
                interface: interface.clone(),
                version: WIT_VERSION.into(),
                functions,
                producers: super::producers::producers(bytes),
            }),
        };
        // A trial instance under the sandbox limits: a function of the wrong
        // type is a load error here, not a failure of the first call.
        super::instance::PolicyInstance::new(policy.clone())
            .instantiate()
            .map_err(|e| mismatch(e.to_string()))?;
        Ok((policy, cached))
    }
}
