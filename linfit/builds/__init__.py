"""TensorFlow builds as sides of ``linfit ab`` (issue 17): what a build is, which builds the
package index has, and the cache of their virtual environments.

- :class:`Build`, :func:`parse_build`: ``tensorflow==2.20.*``, ``tf-nightly==2.23.0.dev20261026``;
- :func:`available`: the builds the index has, oldest first, as pip reports them;
- :class:`BuildCache`: one venv per build, made once under a lock, kept under a size cap;
- :func:`git_commit`: the short commit in a build's ``tf.version.GIT_VERSION``.

Importing this package imports no framework, and nothing beyond the standard library.
"""

from linfit.builds._build import (
    BUILD_PACKAGES,
    NIGHTLY_PACKAGES,
    PIP_ARGS_ENV,
    Build,
    BuildUnavailable,
    available,
    git_commit,
    imported_git_version,
    looks_like_build,
    parse_build,
    parse_index_versions,
)
from linfit.builds._cache import (
    CACHE_ENV,
    CAP_ENV,
    DEFAULT_CAP_BYTES,
    WORKER_REQUIREMENTS,
    BuildCache,
    CacheEntry,
    default_root,
    parse_size,
)

__all__ = [
    "BUILD_PACKAGES",
    "CACHE_ENV",
    "CAP_ENV",
    "DEFAULT_CAP_BYTES",
    "NIGHTLY_PACKAGES",
    "PIP_ARGS_ENV",
    "WORKER_REQUIREMENTS",
    "Build",
    "BuildCache",
    "BuildUnavailable",
    "CacheEntry",
    "available",
    "default_root",
    "git_commit",
    "imported_git_version",
    "looks_like_build",
    "parse_build",
    "parse_index_versions",
    "parse_size",
]
