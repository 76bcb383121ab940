# The two commands of the README:
#   make demo   run the main job on the shipped default (writes demo-out/)
#   make test   run every test (Rust, Java/JUnit, GUI check under Xvfb)
# Both install what they need first (scripts/setup.sh).
SHELL := /bin/bash
CARGO_FLAGS := --release
DEMO_OUT := demo-out

.PHONY: demo test setup build fiji test-rust test-java test-gui clean

setup:
	scripts/setup.sh

build: setup
	cargo build $(CARGO_FLAGS)

demo: build
	mkdir -p $(DEMO_OUT)
	target/release/comir info
	target/release/comir apply --transform demo/transform.json --input .deps/demo/ihc.png \
	  --output $(DEMO_OUT)/ihc-transformed.tif --preview $(DEMO_OUT)/ihc-transformed.png
	target/release/comir apply --transform demo/identity.json --input .deps/demo/ihc.png \
	  --output $(DEMO_OUT)/ihc.tif --preview $(DEMO_OUT)/ihc.png
	@echo "demo outputs in $(DEMO_OUT)/: ihc.png (input) and ihc-transformed.{tif,png}"

fiji:
	scripts/setup.sh --java
	gradle --no-daemon --console=plain -q fijiInstall
	@echo "Fiji install folder: build/fiji (copy its plugins/ and lib/ into Fiji.app)"

test-rust: setup
	cargo test $(CARGO_FLAGS) --no-fail-fast

# ImageJ 1.x builds AWT menus even when no window is shown, so the JUnit tests need a display:
# a virtual one (Xvfb) unless a real one is there.
test-java:
	scripts/setup.sh --gui
	$(if $(DISPLAY),,xvfb-run -a -s "-screen 0 1280x1024x24") gradle --no-daemon --console=plain test

test-gui:
	scripts/setup.sh --gui
	scripts/gui-check.sh

test: test-rust test-java test-gui

clean:
	cargo clean
	rm -rf build .gradle $(DEMO_OUT)
