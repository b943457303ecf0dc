// A file the browser refuses (type, size, count) gets only a toast from Chainlit, which
// vanishes. This script tells the chat server about it, so the refusal stays in the
// conversation: it watches the error toasts that follow picking or dropping files and
// posts {kind, reason, names} to this window, which Chainlit forwards to the server as a
// window message (app.py: on_window_message). Names are those of the files just picked
// that did not become attachments.
(() => {
  const KIND = "rag-chat/upload-refused";
  const WINDOW_MS = 2000;
  let picked = { names: [], at: 0 };

  const remember = (files) => {
    if (files && files.length) {
      picked = { names: Array.from(files, (f) => f.name), at: Date.now() };
    }
  };
  document.addEventListener(
    "change",
    (e) => e.target instanceof HTMLInputElement && e.target.type === "file" && remember(e.target.files),
    true
  );
  document.addEventListener("drop", (e) => remember(e.dataTransfer && e.dataTransfer.files), true);

  const attached = () => {
    const chips = document.querySelector("#attachments");
    return chips ? chips.innerText : "";
  };

  const report = (toast) => {
    if (Date.now() - picked.at > WINDOW_MS) return; // not about files just picked
    const reason = (toast.innerText || "").trim().slice(0, 300);
    if (!reason) return;
    setTimeout(() => {
      const shown = attached();
      const names = picked.names.filter((n) => !shown.includes(n)).slice(0, 20);
      window.postMessage({ kind: KIND, reason, names }, window.location.origin);
    }, 300);
  };

  new MutationObserver((mutations) => {
    for (const m of mutations) {
      for (const node of m.addedNodes) {
        if (!(node instanceof HTMLElement)) continue;
        const toasts = node.matches("[data-sonner-toast]")
          ? [node]
          : Array.from(node.querySelectorAll("[data-sonner-toast]"));
        toasts.filter((t) => t.dataset.type === "error").forEach(report);
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
