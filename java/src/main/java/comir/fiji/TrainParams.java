package comir.fiji;

import ij.gui.GenericDialog;
import java.util.Map;

/**
 * How to train a new model — modality names, network size, steps, start — as one value that is at
 * once the dialog fields (and so the macro keys) and the argument handed to the native library
 * whole, as JSON (the Rust {@code comir::params::TrainParams}; everything else takes the
 * defaults of {@code comir train}). Defaults and sizes come from the library.
 */
public final class TrainParams {
	public final String nameA, nameB, size, start;
	public final long steps;

	public TrainParams(String nameA, String nameB, String size, long steps, String start) {
		this.nameA = nameA == null ? "" : nameA.trim();
		this.nameB = nameB == null ? "" : nameB.trim();
		this.size = size;
		this.steps = steps;
		this.start = start;
	}

	/** The library's defaults. */
	@SuppressWarnings("unchecked")
	public static TrainParams defaults() {
		Map<String, Object> d = (Map<String, Object>) RegisterParams.choices().get("train_defaults");
		return new TrainParams((String) d.get("name_a"), (String) d.get("name_b"), (String) d.get("size"), Math.round((Double) d.get("steps")), (String) d.get("start"));
	}

	/** Adds the fields Name_A, Name_B, Size, Steps, Start with the library's defaults. */
	static void addFields(GenericDialog gd) {
		TrainParams d = defaults();
		gd.addStringField("Name_A", d.nameA, 12);
		gd.addStringField("Name_B", d.nameB, 12);
		gd.addChoice("Size", RegisterParams.list(RegisterParams.choices(), "net_sizes"), d.size);
		gd.addNumericField("Steps", d.steps, 0);
		gd.addStringField("Start", d.start, 24); // "random", or a model file to fine-tune
	}

	/** Reads the fields added by {@link #addFields} (in dialog order). */
	static TrainParams read(GenericDialog gd) {
		return new TrainParams(gd.getNextString(), gd.getNextString(), gd.getNextChoice(), (long) gd.getNextNumber(), gd.getNextString());
	}

	/** What the native library reads. */
	String toJson() {
		return "{\"name_a\":" + Json.quote(nameA) + ",\"name_b\":" + Json.quote(nameB) + ",\"size\":" + Json.quote(size) + ",\"steps\":" + steps + ",\"start\":" + Json.quote(start) + "}";
	}
}
