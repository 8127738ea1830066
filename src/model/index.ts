// Public API of src/model: each module adds its exports here.
export {};
