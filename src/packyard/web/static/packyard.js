// Light progressive enhancement; every page works without it.
document.documentElement.classList.add("js");
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});
// Typed confirmation: the submit button waits for the exact name.
document.querySelectorAll("input[data-confirm]").forEach((input) => {
  const button = input.form && input.form.querySelector("button[type=submit]");
  if (!button) return;
  const update = () => { button.disabled = input.value !== input.dataset.confirm; };
  input.addEventListener("input", update);
  update();
});
