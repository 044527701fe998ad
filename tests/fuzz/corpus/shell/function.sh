f() { rm x; }; function g { h; }; function k() ( l )
f
