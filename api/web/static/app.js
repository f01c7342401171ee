// CYP Registry web UI: the little that needs a script. Pages work without it.
"use strict";

// Copy buttons: <button data-copy="#id"> copies the text of the element it names.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = button.dataset.copied || "✓";
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Forms that ask first: <form data-confirm="Delete …?">.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// Live lists: <ul data-stream="/events/stream" data-max="50"> gets each server-sent
// event's `data.text` as a new first item (text only: never parsed as HTML).
for (const list of document.querySelectorAll("[data-stream]")) {
  const max = Number(list.dataset.max || 50);
  const source = new EventSource(list.dataset.stream);
  source.onmessage = (message) => {
    let item;
    try { item = JSON.parse(message.data); } catch { return; }
    const li = document.createElement("li");
    li.textContent = item.text || "";
    list.prepend(li);
    while (list.children.length > max) list.lastElementChild.remove();
    const empty = document.querySelector(list.dataset.empty || "#none");
    if (empty) empty.hidden = true;
  };
}
