"""The static files storage with DEBUG off: whitenoise's compressed manifest
storage that also rewrites the `import ... from "./x.js"` statements of the
ES modules in eval/static/eval/ to their hashed names. Without it a module
would import the unhashed file: served without the far-future cache headers,
and possibly a stale copy from an earlier deploy next to a fresh entry."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ModuleManifestStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
