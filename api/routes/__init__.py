"""One router per OCP endpoint family."""
