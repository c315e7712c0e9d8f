// Keyboard shortcuts for server-rendered screens: a key clicks the element with data-hotkey="key".
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.altKey || e.metaKey) return;
  if (e.target.closest && e.target.closest("input, textarea, select")) return;
  const key = e.key.toLowerCase();
  const target = document.querySelector(`[data-hotkey="${CSS.escape(key)}"]:not([disabled])`);
  if (target) {
    e.preventDefault();
    target.click();
  }
});
