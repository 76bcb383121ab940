# The two commands of the README:
#   make demo   run the main job on the shipped default (writes demo-out/)
#   make test   run every test (provisioning, the demo checked, Rust, Java/JUnit, GUI check under Xvfb)
# Both install what they need first (scripts/setup.sh).
SHELL := /bin/bash
CARGO_FLAGS := --release
DEMO_OUT := demo-out

.PHONY: demo model eval bench test setup build fiji test-rust test-java test-gui test-demo test-setup docs-images clean

setup:
	scripts/setup.sh

# target/bin/comir (no libtorch: no start-up cost) and target/bin/comir-torch (training, GPUs),
# see scripts/build.sh; target/release holds the libtorch build and the JNI library too.
build: setup
	scripts/build.sh

# The main job on the shipped default: split scikit-image's IHC image into hematoxylin (nuclei)
# and DAB (membrane marker) as two "modalities", move the DAB image by a known rigid transform
# (demo/transform.json), and register it back with the shipped CoMIR model.
MODEL := models/ihc-hdab-small.safetensors
demo: build
	mkdir -p $(DEMO_OUT)
	target/bin/comir info
	target/bin/comir unmix --input .deps/demo/ihc.png --out-dir $(DEMO_OUT)/stains
	target/bin/comir apply --transform demo/transform.json --input $(DEMO_OUT)/stains/dab.tif \
	  --output $(DEMO_OUT)/dab-moved.tif --preview $(DEMO_OUT)/dab-moved.png
	target/bin/comir register --model $(MODEL) --fixed $(DEMO_OUT)/stains/hematoxylin.tif \
	  --moving $(DEMO_OUT)/dab-moved.tif --out $(DEMO_OUT)/registration
	@echo "expected: rotation -15.00° (the inverse of demo/transform.json); outputs in $(DEMO_OUT)/registration:"
	@ls $(DEMO_OUT)/registration

# Retrain the shipped model exactly as it was made (about 45 minutes on 2 CPU cores).
model: build
	target/bin/comir unmix --input .deps/demo/ihc.png --out-dir $(DEMO_OUT)/stains
	target/bin/comir train --a $(DEMO_OUT)/stains/hematoxylin.tif --b $(DEMO_OUT)/stains/dab.tif \
	  --name-a hematoxylin --name-b DAB --preprocess-a percentile --preprocess-b percentile \
	  --region 0,0,256,512 --steps 1500 --all-steps --seed 1 --checkpoint-every 100 --out $(MODEL)

# Evaluate on the right half of the demo pair (the model was trained on the left half), then
# on 1 MP and 640² patches of a mosaic of that half (scripts/eval-large.sh; ~4 and ~3 min;
# 640² is the size class of a 546×273 pair, where the NCC search's copies are 5 px a pixel), then on synthetic
# multimodal pairs of two images no shipped model saw, each with a model trained here with
# `comir train`'s defaults on its left half (scripts/eval-synthetic.sh; ~30 min).
eval: build
	target/bin/comir unmix --input .deps/demo/ihc.png --out-dir $(DEMO_OUT)/stains
	target/bin/comir eval --model $(MODEL) --fixed $(DEMO_OUT)/stains/hematoxylin.tif \
	  --moving $(DEMO_OUT)/stains/dab.tif --region 256,0,256,512 --patch 192 --per-level 10 --out $(DEMO_OUT)/eval
	scripts/eval-large.sh $(DEMO_OUT)/eval-large
	PATCH=640 PER_LEVEL=6 scripts/eval-large.sh $(DEMO_OUT)/eval-640
	scripts/eval-synthetic.sh $(DEMO_OUT)/eval-synthetic

# The README's speed table (ours against each peer, measured in the same run; ~20 min).
bench: build
	bench/speed_table.sh

fiji:
	scripts/setup.sh --java
	gradle --no-daemon --console=plain -q fijiInstall
	@echo "Fiji install folder: build/fiji (copy its plugins/ and lib/ into Fiji.app)"

# Clippy too: the library denies unwrap/expect outside tests (a panic reaches a Fiji user as
# "internal error"), and every warning is an error here.
test-rust: build
	cargo test $(CARGO_FLAGS) --no-fail-fast
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings
	cargo clippy $(CARGO_FLAGS) --no-default-features --target-dir target/lite --lib --bins -- -D warnings

# ImageJ 1.x builds AWT menus even when no window is shown, so the JUnit tests need a display:
# a virtual one (Xvfb) unless a real one is there.
test-java:
	scripts/setup.sh --gui
	$(if $(DISPLAY),,xvfb-run -a -s "-screen 0 1280x1024x24") gradle --no-daemon --console=plain test
	scripts/check-native.sh

test-gui:
	scripts/setup.sh --gui
	scripts/gui-check.sh

# The first README command, checked: the recovered transform undoes demo/transform.json and
# every output file parses.
test-demo: demo
	python3 scripts/check-demo.py $(DEMO_OUT) demo/transform.json

# Provisioning: a corrupt cached wheel is detected and fetched again (small wheel, private cache).
test-setup:
	scripts/test-wheels.sh

test: test-setup test-demo test-rust test-java test-gui

# The README's pictures: the GUI check's screenshots (build/screenshots) into docs/images.
docs-images: test-gui
	cp build/screenshots/*.png docs/images/

clean:
	cargo clean
	rm -rf build .gradle $(DEMO_OUT)
