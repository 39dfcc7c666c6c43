export function join(...p) {
  return p.join("/");
}
