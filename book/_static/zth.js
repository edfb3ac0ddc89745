// Figures drawn smaller than their natural size (a phone, a narrow column) open at full size
// on a click: each such image becomes a link to itself.
document.addEventListener("DOMContentLoaded", () => {
  const wrap = (img) => {
    if (img.closest("a") || img.naturalWidth <= img.clientWidth + 1) return;
    const a = document.createElement("a");
    a.href = img.currentSrc || img.src;
    a.className = "zth-zoom";
    a.title = "Open the figure at full size";
    img.replaceWith(a);
    a.appendChild(img);
  };
  document.querySelectorAll(".bd-article .cell_output img").forEach((img) => {
    if (img.complete) wrap(img); else img.addEventListener("load", () => wrap(img), { once: true });
  });
});
