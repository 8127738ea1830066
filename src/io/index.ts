// Public API of src/io: each module adds its exports here.
export {};
