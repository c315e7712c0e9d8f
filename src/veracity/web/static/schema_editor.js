// Project creation form: show the fields of the chosen kind, add label rows.
const form = document.getElementById("schema-editor");
const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#8a7d00", "#555555"];
const kind = form.querySelector("#kind");

function showKindFields() {
  for (const set of form.querySelectorAll(".kind-only")) {
    const on = set.dataset.kinds.split(" ").includes(kind.value);
    set.hidden = !on;
    set.disabled = !on;
  }
}
kind.addEventListener("change", showKindFields);
showKindFields();

document.getElementById("add-label").addEventListener("click", () => {
  const body = document.querySelector("#labels-table tbody");
  const row = body.rows[body.rows.length - 1].cloneNode(true);
  const n = body.rows.length + 1;
  for (const input of row.querySelectorAll("input")) {
    input.setAttribute("aria-label", input.getAttribute("aria-label").replace(/\d+/, String(n)));
    if (input.name === "label_name") input.value = "";
    if (input.name === "label_hotkey") input.value = n < 10 ? String(n) : "";
    if (input.name === "label_color") input.value = PALETTE[(n - 1) % PALETTE.length];
  }
  body.appendChild(row);
  row.querySelector("input").focus();
});
