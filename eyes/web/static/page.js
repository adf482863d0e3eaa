// Behaviour every page may ask for with data- attributes, so that no page needs inline script
// (the Content-Security-Policy forbids it):
//   <form data-confirm="Delete this photo for good?">  asks before submitting;
//   <p data-reload-after-ms="2000">                     reloads the page after that many ms;
//   <button data-reveal="ID">                           unblurs the sensitive photo in element ID.
(function () {
  document.addEventListener("submit", (e) => {
    const form = e.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-reveal]");
    const target = button && document.getElementById(button.dataset.reveal);
    if (target) target.classList.remove("blurred");
  });
  const reload = document.querySelector("[data-reload-after-ms]");
  if (reload) setTimeout(() => location.reload(), Number(reload.dataset.reloadAfterMs) || 2000);
})();
