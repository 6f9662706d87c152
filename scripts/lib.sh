# Shared helpers for the project's scripts. Source it; do not run it.

# Prints a visible step banner with the elapsed time since the script started.
step() {
    printf '\n==> [%4ss] %s\n' "$SECONDS" "$*"
}

# Where tools the scripts install live (inside the clone, ignored by git).
FLOE_TOOLS="${FLOE_TOOLS:-$PWD/.tools}"
export PATH="$FLOE_TOOLS/bin:$PATH"
