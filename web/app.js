// The page: a network from a seed or a weights file, the top-5 classes of dropped images, a few
// training steps on them with the loss curve, and the first layer's filters. Everything runs
// through mod.js, the library's browser build; `globalThis.alexnet` is what the tests drive.
import { createAlexNet, filterGrid, imageInput, MODELS, openWeights, predict } from "./mod.js";

/** The page's state: the network, its preprocessing, the images and the losses so far. */
const state = { net: null, preprocess: undefined, images: [], losses: [] };

/** The adapter in words, or null where this browser has no WebGPU. */
async function adapterInfo() {
  const adapter = await globalThis.navigator.gpu?.requestAdapter();
  if (!adapter) return null;
  const { vendor, architecture, description } = adapter.info;
  return [description || vendor, architecture].filter(Boolean).join(" ") +
    (adapter.info.isFallbackAdapter ? " (a CPU fallback adapter)" : "");
}

/** Replaces the network with `next`, destroying the old one. */
async function useNetwork(next, preprocess) {
  await state.net?.destroy();
  state.net = next;
  state.preprocess = preprocess;
  state.losses = [];
  return describe();
}

/** A fresh network of `model` from `seed`: the same weights as Deno's from that seed. */
function freshNetwork(model, seed) {
  return createAlexNet({ model, seed }).then((net) => useNetwork(net, undefined));
}

/** A network from a weights file (a `File`, a URL or bytes); `model` if the file names none. */
async function loadWeights(source, model) {
  const { net, preprocess } = await openWeights(source, { model });
  return useNetwork(net, preprocess);
}

function describe() {
  const { name, input, classes } = state.net.config;
  return `${name}: ${input.join("x")} input, ${classes} classes` +
    (state.preprocess ? `, trained on ${state.preprocess.classes.slice(0, 3).join(", ")}…` : "");
}

/** Adds images ({ name, bytes }); each keeps a label for training (class 0 at first). */
function addImages(files) {
  for (const f of files) state.images.push({ name: f.name, bytes: f.bytes, label: 0 });
  return state.images.length;
}

/** The top-5 classes of every image. */
function classify() {
  const files = state.images.map((i) => i.bytes);
  const names = state.images.map((i) => i.name);
  return predict(state.net, files, { preprocess: state.preprocess, top: 5, names });
}

/** The logits of every image's centre crop (what the tests compare with Deno's). */
async function logits() {
  const files = state.images.map((i) => i.bytes);
  const input = imageInput(state.net, files, { preprocess: state.preprocess });
  return Array.from(await state.net.forward(input, files.length));
}

/** `steps` SGD steps on all images with their labels; `onStep(i, loss)` after each. */
async function train(steps, options = {}, onStep = () => {}) {
  const files = state.images.map((i) => i.bytes);
  const input = imageInput(state.net, files, { preprocess: state.preprocess });
  const labels = Int32Array.from(state.images, (i) => i.label);
  const losses = [];
  for (let i = 0; i < steps; i++) {
    const { loss } = await state.net.trainStep(input, labels, options);
    losses.push(loss);
    state.losses.push(loss);
    onStep(i + 1, loss);
  }
  return losses;
}

/** The first layer's filters as RGBA pixels. */
async function filters() {
  const weight = (await state.net.weights()).get(`${state.net.config.layers[0].name}.weight`);
  const p = filterGrid(weight, { columns: 16, scale: 3 });
  const n = p.width * p.height, rgba = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) rgba[4 * i + c] = p.data[(p.channels === 3 ? c : 0) * n + i];
    rgba[4 * i + 3] = 255;
  }
  return new ImageData(rgba, p.width, p.height);
}

globalThis.alexnet = {
  state,
  adapterInfo,
  freshNetwork,
  loadWeights,
  addImages,
  classify,
  logits,
  train,
  filters,
};

// The interface.
const $ = (id) => document.getElementById(id);

let queue = Promise.resolve();

/** Runs `work` after what was asked before (a network is never replaced while in use). */
function guarded(what, work) {
  queue = queue.then(async () => {
    $("status").textContent = `${what}…`;
    $("status").className = "";
    try {
      await work();
      $("status").textContent = "";
    } catch (e) {
      console.warn(e);
      $("status").textContent = `${what} failed: ${e.message}`;
      $("status").className = "error";
    }
  });
  return queue;
}

async function showNetwork(text) {
  $("network").textContent = text;
  const picture = await filters();
  const canvas = $("filters");
  canvas.width = picture.width;
  canvas.height = picture.height;
  canvas.style.width = `${picture.width * 3}px`;
  canvas.getContext("2d").putImageData(picture, 0, 0);
  await showImages();
}

async function showImages() {
  const box = $("images");
  box.replaceChildren();
  if (state.images.length === 0 || !state.net) return;
  const ranked = await classify();
  const classes = state.preprocess?.classes ??
    Array.from({ length: state.net.config.classes }, (_, k) => `class ${k}`);
  state.images.forEach((image, i) => {
    const div = document.createElement("div");
    div.className = "image";
    const img = document.createElement("img");
    img.src = URL.createObjectURL(new Blob([image.bytes]));
    const list = document.createElement("ol");
    for (const r of ranked[i]) {
      const li = document.createElement("li");
      li.textContent = `${r.name} ${(100 * r.probability).toFixed(1)}%`;
      list.append(li);
    }
    const select = document.createElement("select");
    classes.forEach((name, k) => select.add(new Option(`label: ${name}`, String(k))));
    select.value = String(image.label);
    select.onchange = () => image.label = Number(select.value);
    div.append(img, document.createTextNode(image.name), list, select);
    box.append(div);
  });
}

function drawLosses() {
  const canvas = $("loss"), g = canvas.getContext("2d"), l = state.losses;
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (l.length === 0) return;
  const top = Math.max(...l) * 1.1 || 1, dx = canvas.width / Math.max(l.length - 1, 1);
  g.strokeStyle = "#1565c0";
  g.lineWidth = 2;
  g.beginPath();
  l.forEach((v, i) => g.lineTo(i * dx, canvas.height * (1 - v / top)));
  g.stroke();
  g.fillText(`loss ${l.at(-1).toFixed(4)} after ${l.length} steps`, 8, 14);
}

const readFiles = (list) =>
  Promise.all(
    [...list].map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })),
  );

/** Calls `use(files)` with the files dropped on `box`. */
function onDrop(box, use) {
  box.ondragover = (e) => {
    e.preventDefault();
    box.classList.add("over");
  };
  box.ondragleave = () => box.classList.remove("over");
  box.ondrop = (e) => {
    e.preventDefault();
    box.classList.remove("over");
    if (e.dataTransfer.files.length > 0) use(e.dataTransfer.files);
  };
}

async function start() {
  for (const name of Object.keys(MODELS)) $("model").add(new Option(name, name));
  $("model").value = "alexnet-small";
  const info = await adapterInfo();
  if (!info) {
    $("adapter").textContent = "This browser has no WebGPU: use a recent Chromium or Chrome " +
      "(on a machine without a GPU: --enable-unsafe-webgpu).";
    $("adapter").className = "missing";
    for (const b of document.querySelectorAll("button, input, select")) b.disabled = true;
    return;
  }
  $("adapter").textContent = `WebGPU adapter: ${info}`;
  $("fresh").onclick = () =>
    guarded(
      "Creating",
      async () => showNetwork(await freshNetwork($("model").value, Number($("seed").value))),
    );
  $("weights-file").onchange = (e) =>
    guarded(
      "Loading weights",
      async () => showNetwork(await loadWeights(e.target.files[0], $("model").value)),
    );
  $("image-files").onchange = (e) =>
    guarded("Classifying", async () => {
      addImages(await readFiles(e.target.files));
      await showImages();
    });
  $("examples").onclick = () =>
    guarded("Classifying", async () => {
      const names = ["bag.png", "sneaker.png", "trouser.png"];
      addImages(
        await Promise.all(names.map(async (name) => ({
          name,
          bytes: new Uint8Array(await (await fetch(`./examples/${name}`)).arrayBuffer()),
        }))),
      );
      await showImages();
    });
  onDrop($("drop"), (files) =>
    guarded("Classifying", async () => {
      addImages(await readFiles(files));
      await showImages();
    }));
  onDrop(
    $("weights"),
    (files) =>
      guarded(
        "Loading weights",
        async () => showNetwork(await loadWeights(files[0], $("model").value)),
      ),
  );
  $("train").onclick = () =>
    guarded("Training", async () => {
      if (!state.net || state.images.length === 0) throw new Error("make a network and add images");
      const steps = Number($("steps").value), lr = Number($("lr").value);
      $("progress").max = steps;
      await train(steps, { lr }, (i) => {
        $("progress").value = i;
        drawLosses();
      });
      await showNetwork(describe());
    });
}

if (globalThis.document) {
  start().catch((e) => {
    $("adapter").textContent = `Failed: ${e.message}`;
    $("adapter").className = "missing";
  });
}
