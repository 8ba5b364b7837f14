#!/usr/bin/env bash
# Vendors the NHS.UK design system's compiled files from npm into the web package, pinned, so
# nothing is fetched when Reval runs or installs: `scripts/vendor-frontend.sh` after changing the
# version below (nhsuk-frontend-jinja in pyproject.toml must be its matching release).
#
#   reval/web/static/nhsuk-frontend.min.css  <- nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.css
#   reval/web/static/nhsuk-frontend.min.js   <- nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.js (an ES module)
#   reval/web/static/images/*                <- nhsuk-frontend/dist/nhsuk/assets/images/*
#   reval/web/static/manifest.json           <- nhsuk-frontend/dist/nhsuk/assets/manifest.json
#
# The folder is served at /assets: the CSS refers to /assets/images/... Reval's own files live in
# reval/web/static/app/ and are not touched here.
set -euo pipefail

NHSUK_FRONTEND_VERSION="10.6.1"

cd "$(dirname "$0")/.."
TARGET="reval/web/static"
command -v npm >/dev/null || { echo "npm is needed (apt-get install -y npm)" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(
  cd "$WORK"
  printf '{"name":"reval-vendor","version":"0.0.0","private":true}\n' > package.json
  npm install --no-audit --no-fund --ignore-scripts --save-exact --loglevel=error "nhsuk-frontend@${NHSUK_FRONTEND_VERSION}"
)
DIST="$WORK/node_modules/nhsuk-frontend/dist/nhsuk"
for file in nhsuk-frontend.min.css nhsuk-frontend.min.js assets/manifest.json assets/images/favicon.ico; do
  [ -f "$DIST/$file" ] || { echo "nhsuk-frontend ${NHSUK_FRONTEND_VERSION} has no dist/nhsuk/$file" >&2; exit 1; }
done

mkdir -p "$TARGET/images"
rm -f "$TARGET"/images/*
cp "$DIST/nhsuk-frontend.min.css" "$DIST/nhsuk-frontend.min.js" "$TARGET/"
cp "$DIST/assets/manifest.json" "$TARGET/manifest.json"
cp "$DIST"/assets/images/* "$TARGET/images/"
# The minified files end with a source map comment; the maps are not vendored.
sed -i -E 's@//# sourceMappingURL=[^ ]*\.map$@@; s@/\*# sourceMappingURL=[^*]*\*/@@' "$TARGET/nhsuk-frontend.min.css" "$TARGET/nhsuk-frontend.min.js"
echo "nhsuk-frontend $(node -p "require('$WORK/node_modules/nhsuk-frontend/package.json').version")" > "$TARGET/VERSIONS.txt"
echo "vendored $(cat "$TARGET/VERSIONS.txt") into $TARGET"
