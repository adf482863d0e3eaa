// Uploads each chosen or dropped file in its own request, with a progress bar per file.
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const queue = document.getElementById("queue");

  function upload(file) {
    const li = document.createElement("li");
    li.innerHTML = '<span class="name"></span><progress max="100" value="0"></progress><span class="status">waiting…</span>';
    li.querySelector(".name").textContent = file.name;
    queue.appendChild(li);
    const bar = li.querySelector("progress");
    const status = li.querySelector(".status");

    const form = new FormData();
    form.append("file", file, file.name);
    form.append("visibility", document.getElementById("visibility").value);
    form.append("license", document.getElementById("license").value);
    form.append("tags", document.getElementById("tags").value);

    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/photos");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); status.textContent = "uploading… " + bar.value + "%"; }
      };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (_) {}
        if (xhr.status === 200 || xhr.status === 201) {
          bar.value = 100;
          li.classList.add("done");
          status.innerHTML = (xhr.status === 200 ? "already uploaded: " : "uploaded: ") + '<a></a>';
          const a = status.querySelector("a");
          a.href = body.url; a.textContent = "open photo";
          // Stored all the same; the owner decides whether to keep both.
          if (body.near_duplicates && body.near_duplicates.length) {
            const note = document.createElement("span");
            note.className = "near-duplicates";
            note.append(" · looks like a near-duplicate of your ");
            body.near_duplicates.forEach((d, i) => {
              const link = document.createElement("a");
              link.href = d.url; link.textContent = d.title || "photo";
              if (i) note.append(", ");
              note.append(link);
            });
            status.append(note);
          }
        } else {
          li.classList.add("failed");
          status.textContent = "failed: " + ((body.error && body.error.message) || xhr.statusText || "network error");
        }
        resolve();
      };
      xhr.onerror = () => { li.classList.add("failed"); status.textContent = "failed: the server could not be reached"; resolve(); };
      xhr.send(form);
    });
  }

  async function uploadAll(files) {
    for (const file of files) { await upload(file); }
  }

  // The files go up one by one from here: the form itself never submits (Enter in a field).
  document.getElementById("upload-form").addEventListener("submit", (e) => e.preventDefault());
  input.addEventListener("change", () => { uploadAll(Array.from(input.files)); input.value = ""; });
  ["dragenter", "dragover"].forEach((ev) => drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((ev) => drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => uploadAll(Array.from(e.dataTransfer.files)));
})();
