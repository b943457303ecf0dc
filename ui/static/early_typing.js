// Chainlit focuses its message box when the box appears, a moment after the page: the
// keys typed before that went to the page and were lost (a fast typist's first words).
// This script keeps the text typed while there is no message box (and nothing else has
// the focus) and puts it into the box as soon as the box appears, caret at the end.
// The welcome screen's box does not count: the app hides it while connecting (ui.page).
// Only until the box first appears (at most WAIT_MS): keys are the page's own after that.
(() => {
  const WAIT_MS = 20000;
  let typed = "";
  let waiting = true;

  const composer = () => {
    const box = document.querySelector("#chat-input");
    return box && !box.closest("#welcome-screen") ? box : null;
  };
  const unfocused = () => !document.activeElement || document.activeElement === document.body;

  document.addEventListener(
    "keydown",
    (e) => {
      if (!waiting || composer() || !unfocused()) return;
      if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
      if (e.key.length === 1) typed += e.key;
      else if (e.key === "Backspace") typed = typed.slice(0, -1);
      else return;
      e.preventDefault();
    },
    true
  );

  const hand_over = (box) => {
    const text = typed;
    typed = "";
    box.focus();
    if (document.execCommand("insertText", false, text)) return;
    // Without execCommand: the native setter, then the event React listens to.
    const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value").set;
    setter.call(box, text + box.value);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  };

  const observer = new MutationObserver(() => {
    const box = composer();
    if (!box) return;
    stop();
    if (typed) hand_over(box);
  });
  const stop = () => {
    waiting = false;
    observer.disconnect();
  };
  observer.observe(document.documentElement, { childList: true, subtree: true });
  setTimeout(stop, WAIT_MS);
})();
