package comir.fiji;

/** Every failure reported by the CoMIR native library, with a message meant for the user. */
public class ComirException extends RuntimeException {
	private static final long serialVersionUID = 1L;

	public ComirException(String message) {
		super(message);
	}

	public ComirException(String message, Throwable cause) {
		super(message, cause);
	}
}
