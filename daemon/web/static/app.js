// genred's dashboard, written for this project: a typeahead and live job progress.
// Progressive enhancement: every page and form works without this file.
"use strict";

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function el(tag, props, ...children) {
  const node = Object.assign(document.createElement(tag), props || {});
  node.append(...children);
  return node;
}

// ---------------------------------------------------------------- typeahead
// <input data-suggest="/api/genres" [data-multi]>: names from the API as you type; with
// data-multi the input holds a comma-separated list and the last entry is completed.
function typeahead(input) {
  const multi = input.hasAttribute("data-multi");
  const wrap = el("div", { className: "suggest" });
  input.parentNode.insertBefore(wrap, input);
  wrap.append(input);
  const list = el("ul", { role: "listbox", hidden: true });
  list.id = (input.id || input.name) + "-suggestions";
  wrap.append(list);
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  let controller = null, active = -1;

  const term = () => multi ? input.value.split(/[,;]/).pop().trim() : input.value.trim();
  const close = () => { list.hidden = true; list.replaceChildren(); active = -1; };
  const choose = (name) => {
    if (multi) {
      const parts = input.value.split(/[,;]/).slice(0, -1).map((s) => s.trim()).filter(Boolean);
      input.value = [...parts, name].join(", ") + ", ";
    } else {
      input.value = name;
    }
    close();
    input.focus();
    input.dispatchEvent(new Event("change", { bubbles: true }));
  };
  const mark = (index) => {
    const items = [...list.children];
    items.forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    active = index;
  };

  input.addEventListener("input", debounce(async () => {
    const q = term();
    if (controller) controller.abort();
    if (!q) { close(); return; }
    controller = new AbortController();
    try {
      const response = await fetch(`${input.dataset.suggest}?q=${encodeURIComponent(q)}&limit=10`,
        { signal: controller.signal, credentials: "same-origin" });
      if (!response.ok) { close(); return; }
      const items = await response.json();
      list.replaceChildren(...items.map((item) => {
        const li = el("li", { role: "option" }, el("span", { textContent: item.name }),
          el("span", { className: "count", textContent: item.count ? String(item.count) : "" }));
        li.addEventListener("mousedown", (event) => { event.preventDefault(); choose(item.name); });
        return li;
      }));
      list.hidden = items.length === 0;
      active = -1;
    } catch (error) {
      if (error.name !== "AbortError") close();
    }
  }, 150));

  input.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    const count = list.children.length;
    if (event.key === "ArrowDown") { event.preventDefault(); mark((active + 1) % count); }
    else if (event.key === "ArrowUp") { event.preventDefault(); mark((active - 1 + count) % count); }
    else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      choose(list.children[active].firstChild.textContent);
    } else if (event.key === "Escape") { close(); }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
}

document.querySelectorAll("input[data-suggest]").forEach(typeahead);

// Typing into an override field means "not genred's": untick its "keep genred's" box.
document.querySelectorAll("input[data-keep]").forEach((box) => {
  const field = document.getElementById(box.dataset.keep);
  if (field) field.addEventListener("input", () => { box.checked = false; });
});

// ---------------------------------------------------------------- live progress
// The overview's "Running now": server-sent events from /api/progress/events.
function liveProgress(box) {
  const list = box.querySelector("#running");
  let previous = new Set(), source = null;

  const render = (running) => {
    if (!running.length) {
      list.replaceChildren(el("li", { className: "muted idle", textContent: "Nothing is running." }));
    } else {
      list.replaceChildren(...running.map((job) => {
        const bar = el("progress");
        if (job.total) { bar.max = job.total; bar.value = job.done; }
        const counts = job.total ? `${job.done.toLocaleString()} / ${job.total.toLocaleString()}`
          : job.done.toLocaleString();
        return el("li", { className: "job" }, el("strong", { textContent: job.job }), " ",
          el("span", { className: "muted", textContent: job.step }), bar, " ",
          el("span", { className: "num", textContent: counts }));
      }));
    }
    const now = new Set(running.map((job) => job.job));
    const ended = [...previous].filter((job) => !now.has(job));
    if (ended.length) {
      const link = el("a", { href: location.pathname, textContent: "reload for the new figures" });
      box.querySelector(".finished")?.remove();
      box.append(el("p", { className: "finished small" }, `${ended.join(", ")} finished · `, link));
    }
    previous = now;
  };

  const connect = () => {
    source = new EventSource(box.dataset.progress);
    source.addEventListener("progress", (event) => {
      box.dataset.live = "on";
      render(JSON.parse(event.data).running);
    });
    source.addEventListener("bye", () => {
      box.dataset.live = "off";
      source.close();
      setTimeout(connect, 5000);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 10000);
    };
  };
  connect();
  window.addEventListener("pagehide", () => source && source.close());
}

document.querySelectorAll("[data-progress]").forEach(liveProgress);
