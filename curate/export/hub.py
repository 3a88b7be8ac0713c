"""Upload an exported folder to the Hugging Face Hub: a thin call on the folder, token from HF_TOKEN only."""
from __future__ import annotations

import os
from pathlib import Path

from curate.config import ConfigError

TOKEN_ENV = "HF_TOKEN"


class HubError(ConfigError):
    """Pushing to the hub is not possible (no token, no connection); the message never holds the token."""


def require_token() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise HubError(f"push_to_hub needs a Hugging Face write token in the {TOKEN_ENV} environment variable "
                       "(it is read from the environment only, never from a config file)")
    return token


def push_folder(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Create the dataset repo if needed and upload the folder; returns the commit URL."""
    from huggingface_hub import HfApi

    token = require_token()
    api = HfApi(token=token)  # honours HF_ENDPOINT for a self-hosted hub
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                                 commit_message="Upload dataset exported by curate",
                                 ignore_patterns=[".curate-export"])  # export's own marker, not data
    except Exception as exc:  # network / auth errors: one clear line, with the token scrubbed out
        raise HubError(f"push to {repo_id} failed: {type(exc).__name__}: {str(exc).replace(token, '***')}") from None
    return str(getattr(info, "commit_url", info))
