/// The one place the version is written: `charge-gate --version` prints it, and
/// scripts/build-deb reads it from this line to name the Debian package (tests/package checks
/// that packaging/debian/changelog's top entry agrees).
let chargeGateVersion = "0.3.0"
