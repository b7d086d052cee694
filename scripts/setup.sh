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
