// The page of `colorize-demo`: upload a photo or a short film, pick a model, steer hint-taking models with colour
// points; a film is colorized in the background and played beside its original.
// Everything it fetches comes from the local server (see colorization/demo/server.py for the API).
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  photo: null, // {id, name, width, height}
  hints: [], // records of the hints file format: {x, y, color} or {x, y, ab, swatch}
  selected: -1,
  temperature: null, // null: the model's own
  request: 0, // number of the last colorize request sent
  busy: false,
  dirty: false, // the hints, model or temperature changed while a request was running
  resultUrl: null,
  fullRequest: null, // the request number whose full-resolution PNG the download link holds
  film: null, // {id, name, width, height, seconds, frames}: the film shown, if a film is
  filmJob: null, // the id of the film's latest colorization
  filmSuffixes: [],
};

const FILM_POLL_MS = 500;
const FILM_DRIFT_S = 0.15; // the colorized film is moved back in step when it drifts further from the original

// ---- small helpers -----------------------------------------------------------------------------

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function setState(name) {
  document.body.dataset.state = name;
}

async function apiError(response) {
  try {
    const body = await response.json();
    if (body.error) return body.error;
  } catch (ignored) {
    // not JSON: fall through to the status line
  }
  return `the server answered ${response.status} ${response.statusText}`;
}

async function postJson(url, body) {
  return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function currentModel() {
  return state.models.find((model) => model.key === $("model").value);
}

function stem(name) {
  return name.replace(/\.[^.]*$/, "");
}

// ---- models and examples ---------------------------------------------------------------------

async function loadCatalog() {
  const response = await fetch("/api/models");
  if (!response.ok) {
    showMessage(await apiError(response));
    setState("error");
    return;
  }
  const catalog = await response.json();
  state.models = catalog.models;
  for (const model of catalog.models) {
    const option = document.createElement("option");
    option.value = model.key;
    option.textContent = `${model.name} · ${model.key}`;
    $("model").append(option);
  }
  const guided = catalog.models.find((model) => model.hints);
  if (guided) $("model").value = guided.key; // the interactive one first
  for (const name of catalog.examples) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.dataset.example = name;
    button.addEventListener("click", () => loadExample(name));
    $("examples").append(button);
  }
  $("max-megapixels").textContent = catalog.max_megapixels;
  $("max-film-seconds").textContent = catalog.max_film_seconds;
  state.filmSuffixes = catalog.film_suffixes;
  // the server's one list of photo suffixes and one of film suffixes
  $("file").accept = [...catalog.photo_suffixes, ...catalog.film_suffixes].join(",");
  modelChanged();
  setState("idle");
}

async function loadExample(name) {
  const response = await fetch(`/api/examples/${encodeURIComponent(name)}`);
  if (!response.ok) {
    showMessage(await apiError(response));
    return;
  }
  await upload(await response.blob(), `${name}.png`);
}

function modelChanged() {
  const model = currentModel();
  if (!model) return;
  const temperature = model.temperature !== null;
  $("temperature-box").hidden = !temperature || state.film !== null; // films use the model's own temperature
  state.temperature = null;
  if (temperature) showTemperature(model.temperature);
  $("hints-panel").hidden = !model.hints;
  $("hint-note").hidden = !model.hints;
  $("stage").style.cursor = model.hints ? "crosshair" : "default";
  renderHints();
  $("palette").replaceChildren();
  if (model.hints && state.selected >= 0) suggestColours();
  if (state.film) colorizeFilm();
  else colorize();
}

function showTemperature(value) {
  $("temperature").value = value;
  $("temperature-value").textContent = Number(value).toFixed(2);
}

// ---- upload ------------------------------------------------------------------------------------

function isFilm(name) {
  const dot = name.lastIndexOf(".");
  return dot >= 0 && state.filmSuffixes.includes(name.slice(dot).toLowerCase());
}

function chooseFile(file) {
  if (isFilm(file.name)) uploadFilm(file, file.name);
  else upload(file, file.name);
}

async function upload(file, name) {
  showMessage("");
  setState("uploading");
  let response;
  try {
    response = await fetch(`/api/photos?name=${encodeURIComponent(name)}`, { method: "POST", body: file });
  } catch (error) {
    showMessage(`${name}: the upload failed (${error.message})`);
    setState("error");
    return;
  }
  if (!response.ok) {
    showMessage(await apiError(response));
    setState("error");
    return;
  }
  state.photo = await response.json();
  leaveFilm();
  state.hints = [];
  state.selected = -1;
  $("original").src = `/api/photos/${state.photo.id}`;
  $("before").src = $("original").src;
  $("viewer").hidden = false;
  $("drop-note").hidden = true;
  renderHints();
  colorize();
}

// ---- colorize: one request at a time, the latest state wins ------------------------------------

function hintsToSend() {
  return state.hints.map(({ x, y, color, ab }) => (color ? { x, y, color } : { x, y, ab }));
}

// what the page shows now, as a request: the preview, or with `full` the whole photo
function colorizeRequest(full) {
  const model = currentModel();
  const hints = model.hints ? hintsToSend() : [];
  return { photo: state.photo.id, model: model.key, hints, temperature: state.temperature, full };
}

async function colorize() {
  if (!state.photo) return;
  state.dirty = true;
  if (state.busy) return;
  state.busy = true;
  setState("busy");
  while (state.dirty) {
    state.dirty = false;
    const body = colorizeRequest(false);
    const number = ++state.request;
    const started = performance.now();
    let response;
    try {
      response = await postJson("/api/colorize", body);
    } catch (error) {
      showMessage(`the server cannot be reached (${error.message})`);
      break;
    }
    if (!response.ok) {
      showMessage(await apiError(response));
      if (state.dirty) continue;
      state.busy = false;
      setState("error");
      return;
    }
    const blob = await response.blob();
    if (state.dirty) continue; // outdated already: do not flash it
    await showResult(blob, number, response.headers.get("X-Colorize-Seconds"), performance.now() - started);
  }
  state.busy = false;
  setState(state.dirty ? "busy" : "ready");
  if (state.dirty) colorize();
}

function previewOnly() {
  return state.photo.preview_width !== state.photo.width || state.photo.preview_height !== state.photo.height;
}

function showResult(blob, number, serverSeconds, roundTripMs) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  state.fullRequest = null; // what is shown changed: a full-resolution download is made anew
  const result = $("result");
  const loaded = new Promise((resolve) => {
    result.onload = resolve;
    result.onerror = resolve;
  });
  result.src = state.resultUrl;
  const download = $("download");
  download.href = previewOnly() ? "#" : state.resultUrl;
  download.download = `${stem(state.photo.name)}-colorized.png`;
  download.removeAttribute("aria-disabled");
  $("timing").textContent = `· ${Number(serverSeconds).toFixed(2)} s to colorize, ${(roundTripMs / 1000).toFixed(2)} s in all`;
  return loaded.then(() => {
    result.dataset.request = String(number);
    result.dataset.hints = String(state.hints.length);
    showMessage("");
  });
}

// a photo larger than its preview is colorized again, whole, when the download is asked for
async function downloadFull(event) {
  if (!state.photo || !previewOnly() || state.busy) {
    if (state.busy) event.preventDefault();
    return;
  }
  const link = $("download");
  if (link.href.startsWith("blob:") && state.fullRequest === state.request) return; // ready: let the click save it
  event.preventDefault();
  const body = colorizeRequest(true);
  setState("busy");
  showMessage("");
  link.setAttribute("aria-disabled", "true");
  link.textContent = "Colorizing the full-resolution photo…";
  const response = await postJson("/api/colorize", body);
  link.textContent = "Download full-resolution PNG";
  link.removeAttribute("aria-disabled");
  setState("ready");
  if (!response.ok) {
    showMessage(await apiError(response));
    return;
  }
  link.href = URL.createObjectURL(await response.blob());
  state.fullRequest = state.request;
  link.click();
}

// ---- hints -------------------------------------------------------------------------------------

function hintColour(hint) {
  return hint.color || hint.swatch;
}

// hints are in the full photo's pixels, whatever size the (preview) image is shown at
function pixelAt(event) {
  const { width, height } = state.photo;
  const box = $("original").getBoundingClientRect();
  const x = ((event.clientX - box.left) / box.width) * width;
  const y = ((event.clientY - box.top) / box.height) * height;
  return {
    x: Math.min(Math.max(Math.floor(x), 0), width - 1),
    y: Math.min(Math.max(Math.floor(y), 0), height - 1),
  };
}

function renderHints() {
  const { width, height } = state.photo || { width: 1, height: 1 };
  const markers = [];
  const items = [];
  state.hints.forEach((hint, index) => {
    const marker = document.createElement("div");
    marker.className = "marker" + (index === state.selected ? " selected" : "");
    marker.style.left = `${((hint.x + 0.5) / width) * 100}%`;
    marker.style.top = `${((hint.y + 0.5) / height) * 100}%`;
    marker.style.background = hintColour(hint);
    marker.dataset.index = String(index);
    marker.title = `(${hint.x}, ${hint.y}) ${hintColour(hint)}`;
    markers.push(marker);
    const item = document.createElement("li");
    item.className = index === state.selected ? "selected" : "";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.display = "inline-block";
    swatch.style.background = hintColour(hint);
    item.append(swatch, ` x ${hint.x}, y ${hint.y}, ${hint.color || `ab ${hint.ab.map((v) => v.toFixed(1)).join(", ")}`}`);
    item.addEventListener("click", () => select(index));
    items.push(item);
  });
  $("markers").replaceChildren(...(currentModel()?.hints ? markers : []));
  $("hint-list").replaceChildren(...items);
  $("delete-hint").disabled = state.selected < 0;
}

function select(index) {
  state.selected = index;
  if (index >= 0 && state.hints[index].color) $("colour").value = state.hints[index].color;
  renderHints();
  $("palette").replaceChildren();
  if (index >= 0) suggestColours();
}

function addHint(event) {
  const model = currentModel();
  if (!model?.hints || !state.photo || event.target.classList.contains("marker")) return;
  const { x, y } = pixelAt(event);
  state.hints.push({ x, y, color: $("colour").value });
  select(state.hints.length - 1);
  colorize();
}

function recolourSelected(color) {
  if (state.selected < 0) return;
  const { x, y } = state.hints[state.selected];
  state.hints[state.selected] = { x, y, color };
  $("colour").value = color;
  renderHints();
  colorize();
}

function deleteSelected() {
  if (state.selected < 0) return;
  state.hints.splice(state.selected, 1);
  select(-1);
  colorize();
}

async function suggestColours() {
  const model = currentModel();
  if (!model?.palette || state.selected < 0 || !state.photo) return;
  const index = state.selected;
  const { x, y } = state.hints[index];
  const others = hintsToSend().filter((_, i) => i !== index);
  const response = await postJson("/api/palette", { photo: state.photo.id, model: model.key, x, y, hints: others });
  if (!response.ok) {
    showMessage(await apiError(response));
    return;
  }
  const { colors } = await response.json();
  if (state.selected !== index) return; // another point was chosen meanwhile
  $("palette").replaceChildren(
    ...colors.map(({ color, probability }) => {
      const button = document.createElement("button");
      button.type = "button";
      button.style.background = color;
      button.title = `${color} (p = ${probability.toFixed(3)})`;
      button.dataset.color = color;
      button.addEventListener("click", () => recolourSelected(color));
      return button;
    })
  );
}

// dragging a point moves it; the photo recolours as it moves (one request at a time)
let drag = null;

function startDrag(event) {
  if (!event.target.classList.contains("marker")) return;
  event.preventDefault();
  const index = Number(event.target.dataset.index);
  if (index !== state.selected) select(index);
  drag = { index, moved: false };
  event.target.setPointerCapture(event.pointerId);
}

function moveDrag(event) {
  if (!drag) return;
  const { x, y } = pixelAt(event);
  const hint = state.hints[drag.index];
  if (hint.x === x && hint.y === y) return;
  hint.x = x;
  hint.y = y;
  drag.moved = true;
  renderHints();
  colorize();
}

function endDrag() {
  if (drag?.moved) suggestColours();
  drag = null;
}

function saveHints() {
  const blob = new Blob([JSON.stringify(hintsToSend(), null, 1)], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${state.photo ? stem(state.photo.name) : "photo"}-hints.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function loadHints(file) {
  if (!state.photo) {
    showMessage("upload a photo before loading its hints");
    return;
  }
  const url = `/api/hints?photo=${state.photo.id}&name=${encodeURIComponent(file.name)}`;
  const response = await fetch(url, { method: "POST", body: file });
  if (!response.ok) {
    showMessage(await apiError(response));
    return;
  }
  state.hints = (await response.json()).hints;
  select(-1);
  showMessage("");
  colorize();
}

// ---- films: uploaded, colorized in the background, played side by side --------------------------

function leaveFilm() {
  state.film = null;
  state.filmJob = null;
  for (const id of ["film-original", "film-result"]) {
    $(id).pause();
    $(id).removeAttribute("src");
  }
  $("film-viewer").hidden = true;
}

async function uploadFilm(file, name) {
  showMessage("");
  setState("uploading");
  let response;
  try {
    response = await fetch(`/api/films?name=${encodeURIComponent(name)}`, { method: "POST", body: file });
  } catch (error) {
    showMessage(`${name}: the upload failed (${error.message})`);
    setState("error");
    return;
  }
  if (!response.ok) {
    showMessage(await apiError(response));
    setState("error");
    return;
  }
  leaveFilm();
  state.photo = null;
  state.hints = [];
  state.film = await response.json();
  $("viewer").hidden = true;
  $("hints-panel").hidden = true;
  $("temperature-box").hidden = true;
  $("drop-note").hidden = true;
  $("film-viewer").hidden = false;
  $("film-original").src = `/api/films/${state.film.id}/original`;
  colorizeFilm();
}

// a colorization runs on the server; a newer one (another model, the filter switched) replaces it there
async function colorizeFilm() {
  if (!state.film) return;
  const film = state.film;
  const body = { model: currentModel().key, deflicker: $("deflicker").checked ? "flow" : "none" };
  const response = await postJson(`/api/films/${film.id}/colorize`, body);
  if (!response.ok) {
    showMessage(await apiError(response));
    setState("error");
    return;
  }
  const job = (await response.json()).job;
  state.filmJob = job;
  setState("busy");
  showMessage("");
  $("film-download").hidden = true;
  $("film-result").removeAttribute("src");
  $("film-result").dataset.job = "";
  while (state.film === film && state.filmJob === job) {
    const poll = await fetch(`/api/films/${film.id}/jobs/${job}`);
    if (!poll.ok) {
      showMessage(await apiError(poll));
      setState("error");
      return;
    }
    const progress = await poll.json();
    if (state.film !== film || state.filmJob !== job) return; // replaced meanwhile
    showFilmProgress(progress);
    if (progress.done) {
      if (progress.error) {
        showMessage(progress.error);
        setState("error");
      } else {
        showFilmResult(film, job);
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, FILM_POLL_MS));
  }
}

function showFilmProgress({ frames, total, frames_per_s: rate, eta_s: eta, done }) {
  $("film-progress").max = total || Math.max(frames, 1);
  $("film-progress").value = done ? $("film-progress").max : frames;
  const of = total ? ` of ${total}` : "";
  const left = eta !== null && eta !== undefined && !done ? `, ${Math.ceil(eta)} s left` : "";
  $("film-status").textContent = `· ${frames}${of} frames, ${rate.toFixed(1)} frames/s${left}`;
}

function showFilmResult(film, job) {
  const result = $("film-result");
  result.src = `/api/films/${film.id}/jobs/${job}/playable`;
  result.dataset.job = job;
  const download = $("film-download");
  download.href = `/api/films/${film.id}/jobs/${job}/film`;
  download.download = `${stem(film.name)}-colorized.mp4`;
  download.hidden = false;
  result.addEventListener("loadeddata", () => keepInStep(), { once: true });
  setState("ready");
}

// the colorized film follows the original: same time, playing or paused with it
function keepInStep() {
  const original = $("film-original");
  const result = $("film-result");
  if (!result.src || result.readyState === 0) return;
  if (Math.abs(result.currentTime - original.currentTime) > FILM_DRIFT_S) result.currentTime = original.currentTime;
  if (original.paused !== result.paused) {
    if (original.paused) result.pause();
    else result.play().catch(() => {});
  }
}

// ---- wiring ------------------------------------------------------------------------------------

function wire() {
  $("model").addEventListener("change", modelChanged);
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) chooseFile(file);
    event.target.value = ""; // choosing the same file again uploads it again
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) chooseFile(file);
  });
  $("temperature").addEventListener("input", () => {
    state.temperature = Number($("temperature").value);
    showTemperature(state.temperature);
    colorize();
  });
  $("temperature-reset").addEventListener("click", () => {
    state.temperature = null;
    showTemperature(currentModel().temperature);
    colorize();
  });
  $("wipe").addEventListener("input", () => {
    $("before").style.clipPath = `inset(0 ${100 - Number($("wipe").value)}% 0 0)`;
  });
  $("original").addEventListener("load", renderHints);
  $("stage").addEventListener("click", addHint);
  $("stage").addEventListener("pointerdown", startDrag);
  $("stage").addEventListener("pointermove", moveDrag);
  $("stage").addEventListener("pointerup", endDrag);
  $("stage").addEventListener("dblclick", (event) => {
    if (event.target.classList.contains("marker")) deleteSelected();
  });
  $("colour").addEventListener("input", () => recolourSelected($("colour").value));
  $("delete-hint").addEventListener("click", deleteSelected);
  $("clear-hints").addEventListener("click", () => {
    state.hints = [];
    select(-1);
    colorize();
  });
  $("save-hints").addEventListener("click", saveHints);
  $("hints-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) loadHints(file);
    event.target.value = "";
  });
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
    if ((event.key === "Delete" || event.key === "Backspace") && !typing) deleteSelected();
  });
  $("download").addEventListener("click", downloadFull);
  $("download").setAttribute("aria-disabled", "true");
  $("deflicker").addEventListener("change", colorizeFilm);
  const original = $("film-original");
  original.addEventListener("play", () => $("film-result").play().catch(() => {}));
  original.addEventListener("pause", () => $("film-result").pause());
  original.addEventListener("seeked", keepInStep);
  original.addEventListener("timeupdate", keepInStep);
  original.addEventListener("ratechange", () => ($("film-result").playbackRate = original.playbackRate));
}

wire();
loadCatalog();
