"""Which engine runs the stages: ``local`` (this process, the default) or ``dask`` (a Dask cluster).

    engine: dask
    dask: {scheduler_address: tcp://10.0.0.5:8786}   # an existing cluster (Slurm, Kubernetes, ...)
    dask: {local_workers: 2}                          # or a LocalCluster on 127.0.0.1 that curate starts and stops

The engine never changes what a stage computes, only where: it is not part of any stage's config hash.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from curate.errors import UsageError

EngineName = Literal["local", "dask"]


class EngineUnavailable(UsageError):
    """The engine the settings name cannot be used (no Dask extra, no scheduler at the address). Raised when a
    stage first needs it, and reported as it is (one line, exit 2), not as that stage's failure."""


class DaskSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduler_address: str | None = Field(None, description="Address of a running Dask scheduler "
                                          "(tcp://host:8786); empty: start a LocalCluster on 127.0.0.1.")
    local_workers: int = Field(2, ge=1, le=256, description="Worker processes of the LocalCluster curate starts "
                               "when no scheduler_address is given (one thread each).")
    shard_rows: int = Field(20_000, ge=1, description="Rows per parquet shard a worker task reads (bounds memory "
                            "per worker; results do not depend on it).")
    shard_dir: Path | None = Field(None, description="Folder for the shards, visible to every worker under the "
                                   "same path (default: the run's cache folder; on a real cluster, shared storage).")

    @model_validator(mode="after")
    def _one_cluster(self) -> "DaskSettings":
        if self.scheduler_address is not None and not self.scheduler_address.strip():
            raise ValueError("scheduler_address is empty: give tcp://host:port, or leave it out for a LocalCluster")
        return self


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: EngineName = "local"
    dask: DaskSettings = Field(default_factory=DaskSettings)

    def overridden(self, engine: str | None = None, scheduler: str | None = None,
                   workers: int | None = None) -> "EngineSettings":
        """These settings with the CLI's --engine / --scheduler / --workers applied (a scheduler implies dask)."""
        dask = self.dask.model_copy(update={k: v for k, v in
                                            (("scheduler_address", scheduler), ("local_workers", workers))
                                            if v is not None})
        name = engine or ("dask" if scheduler else self.engine)
        return EngineSettings(engine=name, dask=DaskSettings.model_validate(dask.model_dump()))
