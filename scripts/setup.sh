#!/usr/bin/env bash
# Creates the virtual environment with every pinned package, and installs the offline Fashion-MNIST data set
# from Debian's package where apt is at hand (the image chapters' default data).
set -euo pipefail
venv=${1:-.venv}
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r requirements.txt
"$venv/bin/python" -m pip install -q --no-deps -e .
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
    || echo "setup: could not install dataset-fashion-mnist; the image chapters will say where to put the data"
fi
# The built book must open offline, so what its pages load comes from the book's own _static/ rather than a CDN,
# taken from pinned npm releases: MathJax (the combined TeX/MathML component and its web fonts) and the Font
# Awesome 4 icons of matplotlib's animation controls (css and fonts).
npm_files() {   # package version destination path...
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q "$1@$2" >/dev/null && tar -xzf "$1-$2.tgz")
  local dest=$3; shift 3
  for path in "$@"; do mkdir -p "$dest/$(dirname "$path")"; cp -r "$tmp/package/$path" "$dest/$(dirname "$path")/"; done
  rm -rf "$tmp"
}
[ -f _static/mathjax/es5/tex-mml-chtml.js ] || npm_files mathjax 3.2.2 _static/mathjax \
  es5/tex-mml-chtml.js es5/output/chtml/fonts/woff-v2
[ -f _static/font-awesome/css/font-awesome.min.css ] || npm_files font-awesome 4.7.0 _static/font-awesome css fonts
