"""Hydra wiring: the resolvers conf/ uses and the ConfigStore node it starts from.

Imported by the app (regbench/app.py) and by anything else that composes conf/ (the tests' fixtures),
before composing. It sits beside the app, above every other layer, so the resolvers may call into
identity and plugins without any lower module importing upwards.
"""
from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from regbench import identity, plugins

# ${div:a,b} in conf/: e.g. grad_penalty's strength = lr/4 follows a learning-rate sweep.
OmegaConf.register_new_resolver("div", lambda a, b: float(a) / float(b), replace=True)


def _job_dir_name(*, _root_: DictConfig) -> str:
    return identity.job_dir_name(_root_)


# ${regbench_job:} in conf/hydra/regbench.yaml names a sweep job's dir by its identity.
OmegaConf.register_new_resolver("regbench_job", _job_dir_name, replace=True)
# ${regbench_plugins:} in conf/hydra/regbench.yaml's help template lists the installed plug-ins.
OmegaConf.register_new_resolver("regbench_plugins", lambda: plugins.help_text(), replace=True)


def _open_regularizer_node() -> DictConfig:
    """conf/config.yaml's first default. Hydra closes every node that is not explicitly open, so without
    this `regularizer.dropout.p=0.2,0.5` beside `regularizer=none,dropout` is refused in the `none` jobs.
    Open, the `none` jobs get settings of a technique they did not select: they are validated and then
    ignored (not part of the result's identity; see regbench.identity)."""
    node = OmegaConf.create({"regularizer": {}})
    OmegaConf.set_struct(node.regularizer, False)
    return node


ConfigStore.instance().store(name="regbench_base", node=_open_regularizer_node())
