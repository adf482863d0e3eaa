// Keeps a photo's tags live: shows the network's suggestions as soon as they are stored,
// and confirms them with one click through the JSON API.
(function () {
  const article = document.querySelector("article.photo");
  if (!article) return;
  const id = article.dataset.photoId;
  const own = article.dataset.own === "true";
  const canVote = article.dataset.canVote === "true";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const list = document.getElementById("tags");
  const status = document.getElementById("tagging-status");

  function render(tags) {
    list.replaceChildren(...tags.map((t) => {
      const li = document.createElement("li");
      li.className = "tag-item " + t.status;
      li.dataset.tag = t.name;
      const a = document.createElement("a");
      a.className = "tag"; a.href = "/tags/" + encodeURIComponent(t.name); a.textContent = t.name;
      li.appendChild(a);
      if (t.status === "suggested" && t.confidence !== null) {
        const c = document.createElement("span");
        c.className = "confidence"; c.title = "suggested by model " + t.model_version;
        c.textContent = Math.floor(t.confidence * 100) + "%";
        li.appendChild(c);
      }
      if (own) {
        if (t.status === "suggested") li.appendChild(button("✓", "confirm", "Yes, this is right"));
        li.appendChild(button("✗", "reject", t.status === "suggested" ? "No, this is wrong" : "Remove this tag"));
      } else if (canVote) {
        li.appendChild(button("✓", "agree", "Yes, this photo shows it"));
        li.appendChild(button("✗", "disagree", "No, it does not"));
      }
      return li;
    }));
  }

  function button(text, action, title) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "small " + action; b.dataset.action = action; b.title = title; b.textContent = text;
    return b;
  }

  async function call(method, url, body) {
    const res = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json", "Accept": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || res.statusText);
    return data;
  }

  list.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-action]");
    if (!b) return;
    e.preventDefault();
    const name = b.closest("li").dataset.tag;
    if (b.dataset.action === "agree" || b.dataset.action === "disagree") {
      try {
        const tally = await call("POST", `/api/v1/photos/${id}/votes`, { tag: name, agrees: b.dataset.action === "agree" });
        const t = tally.find((x) => x.tag === name) || { agree: 0, disagree: 0 };
        status.textContent = `Thanks! "${name}": ${t.agree} agree, ${t.disagree} disagree.`;
      } catch (err) { status.textContent = "Could not vote: " + err.message; }
      return;
    }
    try {
      const tags = b.dataset.action === "confirm"
        ? await call("POST", `/api/v1/photos/${id}/tags`, { name })
        : await call("DELETE", `/api/v1/photos/${id}/tags/${encodeURIComponent(name)}`);
      render(tags);
    } catch (err) { status.textContent = "Could not change the tag: " + err.message; }
  });

  async function poll(delay) {
    try {
      const photo = await call("GET", `/api/v1/photos/${id}`);
      if (photo.tagging !== "pending") {
        render(photo.tags);
        status.textContent = photo.tagging === "untaggable" ? "Eyes could not read this photo to suggest tags." : "";
        return;
      }
    } catch (_) { /* try again */ }
    setTimeout(() => poll(Math.min(delay * 1.5, 5000)), delay);
  }
  if (article.dataset.tagging === "pending") poll(500);
})();
